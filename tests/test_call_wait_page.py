"""Asking for a call within 30 seconds of a text: the server waits before it calls, and the page
says so plainly (no "We're calling", no "The call has ended"), counting down to "Call me".

In Chromium; the page's timers are Playwright's fake clock and the server's the injected one.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.helpers import add_phone
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page: fixtures used here)
    CHROMIUM, browser, chromium, page, shot, sign_in, texted_code)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
MOBILE = "+447400111222"


def ask_for_a_call_soon_after_a_text(page, phones, run, bob, clock) -> None:  # noqa: F811 (the fixture)
    add_phone(run, bob, MOBILE, types=("sms", "voice"))  # texts first: the sign-in starts with a text
    # Fake timers that keep running (axe-core, run on every page, needs them); fast_forward jumps.
    page.clock.install()
    sign_in(page, "bob")
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    texted_code(phones, MOBILE)
    clock.advance(seconds=6)
    page.get_by_role("link", name="Sign in another way").click()
    page.get_by_role("button", name=re.compile(r"^\s*Call")).click()
    page.get_by_role("heading", name="We have not called you yet").wait_for()
    page.wait_for_load_state()  # app.js has run: the countdown holds the button


def test_a_call_asked_for_during_the_wait_says_no_call_was_made_yet(page, live, phones, run, bob, clock):  # noqa: F811 (the fixture)
    ask_for_a_call_soon_after_a_text(page, phones, run, bob, clock)
    main = page.locator("main")
    expect(main).to_contain_text("we have not called +44 •••• ••1222")
    for untrue in ("We're calling", "The call has ended", "That call did not verify you", "Call me again",
                   "Answer it"):
        expect(main).not_to_contain_text(untrue)
    assert page.title().startswith("Error: We have not called you yet")  # the wait is the flashed error
    expect(page.locator("[data-cooldown-note]")).to_have_text("You can ask for a call in 24 seconds.")
    expect(page.get_by_role("button", name="Call me", exact=True)).to_be_disabled()
    phones.wait_idle()
    assert phones.calls(to=MOBILE) == []
    shot(page, "call-wait-not-called")


def test_after_the_wait_call_me_places_the_call(page, live, phones, run, bob, clock):  # noqa: F811 (the fixture)
    ask_for_a_call_soon_after_a_text(page, phones, run, bob, clock)
    call_me = page.get_by_role("button", name="Call me", exact=True)
    expect(call_me).to_be_disabled()
    page.clock.fast_forward(24_000)
    clock.advance(seconds=24)
    expect(call_me).to_be_enabled()
    expect(page.locator("[data-cooldown-note]")).to_be_hidden()
    call_me.click()
    expect(page.get_by_role("heading", name=re.compile("Answer the call|Your phone is ringing"))).to_be_visible()
    expect(page.locator("main")).to_contain_text("We're calling +44 •••• ••1222")
    expect(page.locator("main")).not_to_contain_text("Wait")
    phones.wait_idle()
    [call] = phones.calls(to=MOBILE)
    phones.answer(call.sid)
    phones.press(call.sid, "#")
    page.get_by_text("You're signed in").wait_for()


def test_reloading_after_the_wait_still_says_no_call_was_made(page, live, phones, run, bob, clock):  # noqa: F811 (the fixture)
    ask_for_a_call_soon_after_a_text(page, phones, run, bob, clock)
    clock.advance(seconds=24)
    page.reload()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("We have not called you yet")
    main = page.locator("main")
    expect(main).to_contain_text("Select 'Call me' and we will call +44 •••• ••1222")
    for untrue in ("The call has ended", "That call did not verify you", "We wait a short time"):
        expect(main).not_to_contain_text(untrue)
    expect(page.get_by_role("button", name="Call me", exact=True)).to_be_enabled()
    assert phones.calls(to=MOBILE) == []
