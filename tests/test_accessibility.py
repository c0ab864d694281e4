"""WCAG 2.2 AA on the pages, by machine and by the checks axe-core cannot make.

Every browser test's page states go through axe-core (tests/browser_steps.py, wired into the
`browser` fixture); these tests reach the states the issue found wrong by hand, each from the
page a person would be on.
"""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from mfa import time_limits
from mfa.authentications import AUTHENTICATION_TTL
from models import Authentication, Method
from tests.browser_steps import AxeWatch, assert_accessible, axe_violations
from tests.conftest import run_in
from tests.helpers import add_phone
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page: fixtures used here)
    CHROMIUM, browser, chromium, page, sign_in, texted_code)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")


def test_axe_core_runs_on_the_pages_and_fails_a_field_without_a_label(chromium, live):
    context = chromium.new_context(base_url=live.url)  # unwatched: this test breaks the page on purpose
    tab = context.new_page()
    tab.goto("/sign-in")
    assert_accessible(tab, "sign-in")
    tab.evaluate("document.querySelector('label[for=username]').remove()")
    found = axe_violations(tab)
    assert found and "label" in {v["id"] for v in found}
    with pytest.raises(AssertionError, match="label"):
        assert_accessible(tab, "sign-in without its label")
    context.close()


def test_the_watcher_checks_every_page_a_browser_loads(chromium, live):
    watch = AxeWatch()
    context = watch.watch(chromium.new_context(base_url=live.url))
    tab = context.new_page()
    tab.goto("/sign-in")
    tab.wait_for_load_state()
    watch.check_open_pages()
    assert watch.checked >= 1 and not watch.findings
    tab.evaluate("document.documentElement.removeAttribute('lang')")
    watch.check_open_pages()
    context.close()
    assert any("html-has-lang" in finding for finding in watch.findings)


def test_an_empty_choice_links_to_the_first_option_and_titles_the_page_as_an_error(page, bob):
    sign_in(page, "bob")
    page.wait_for_url("**/register")
    page.get_by_role("button", name="Continue").click()
    link = page.locator(".nhsuk-error-summary a")
    assert link.get_attribute("href") == "#method-app"
    assert page.title().startswith("Error: ")
    fieldset = page.locator("fieldset")
    assert "method-error" in fieldset.get_attribute("aria-describedby")
    link.click()
    assert page.evaluate("document.activeElement.id") == "method-app"
    assert_accessible(page, "register, nothing chosen")


def test_text_and_app_code_pages_have_their_own_titles_and_an_error_prefix(page, live, phones, run, bob):
    add_phone(run, bob, "+447400123456", types=("sms", "voice"))
    run_in(live.app, lambda db, svc: db.add(Method(
        user_id=bob.id, type="totp", label="Authenticator app", verified_at=svc.clock.now(), created_at=svc.clock.now(),
        totp_secret_encrypted=svc.vault.encrypt("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))))
    sign_in(page, "bob")
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    text_title = page.title()
    assert text_title.startswith("Enter the code we texted you")
    page.get_by_label("Code", exact=True).fill("000000" if texted_code(phones, "+447400123456") != "000000"
                                                else "111111")
    page.get_by_role("button", name="Verify").click()
    page.locator(".nhsuk-error-summary").wait_for()
    assert page.title() == "Error: " + text_title
    assert_accessible(page, "text code, wrong")
    page.goto("/verify/other")
    page.get_by_role("button", name=re.compile("authenticator app", re.I)).click()
    page.get_by_role("heading", name="Enter the code from your authenticator app").wait_for()
    assert page.title().startswith("Enter the code from your authenticator app") and page.title() != text_title


def test_the_sign_in_warns_before_it_times_out_and_gives_more_time(page, live, phones, run, clock, bob):
    add_phone(run, bob, "+447400123456", types=("sms", "voice"))
    sign_in(page, "bob")
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    notice = page.locator("[data-time-limit-notice]")
    expect(notice).to_be_hidden()  # no warning while there is time (app.js hides it: wait for it)
    clock.advance((AUTHENTICATION_TTL - timedelta(seconds=90)).total_seconds())
    page.reload()
    notice.wait_for()
    assert "your sign-in will end in 2 minutes" in notice.inner_text()
    assert page.locator("[aria-live][data-time-limit-announce]").inner_text() == notice.locator("p").inner_text()
    assert_accessible(page, "sign-in about to time out")
    page.get_by_role("button", name="Give me more time").click()
    page.get_by_text("You have 10 more minutes to finish your sign-in.").wait_for()
    clock.advance(minutes=7)  # past the first 10 minutes: only the extension keeps it open
    page.reload()
    expect(page.locator("[data-time-limit-notice]")).to_be_hidden()  # time enough again: no warning
    page.get_by_role("button", name="Resend code").click()  # the first code lasted 5 minutes
    page.get_by_label("Code", exact=True).fill(texted_code(phones, "+447400123456"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're signed in").wait_for()


def test_more_time_never_goes_past_the_longest_sign_in(live, run, clock, bob):
    add_phone(run, bob, "+447400123456", types=("sms", "voice"))
    started = run_in(live.app, lambda db, svc: _started(db, svc, bob))
    extensions = 0
    clock.advance(minutes=9)
    while run_in(live.app, lambda db, svc: time_limits.extend(db, svc, db.get(Authentication, started))):
        extensions += 1
        clock.advance(minutes=9)
    auth = run_in(live.app, lambda db, svc: db.get(Authentication, started))
    assert extensions >= 10  # WCAG 2.2.1: at least ten extensions
    assert auth.expires_at <= auth.created_at + time_limits.LONGEST
    clock.advance(time_limits.LONGEST.total_seconds())
    assert not run_in(live.app, lambda db, svc: time_limits.extend(db, svc, db.get(Authentication, started)))


def _started(db, svc, user):
    now = svc.clock.now()
    auth = Authentication(user_id=user.id, created_at=now, expires_at=now + AUTHENTICATION_TTL, attempts=0, sends=0,
                          purpose="sign_in", status="mfa_required")
    db.add(auth)
    db.flush()
    return auth.id


def test_the_welsh_language_option_is_marked_as_welsh(page, bob):
    sign_in(page, "bob")
    page.get_by_label("Authentication phone").check()
    page.get_by_role("button", name="Continue").click()
    welsh = page.locator("#language option", has_text="Cymraeg")
    assert welsh.get_attribute("lang") == "cy"


def test_the_call_page_says_each_moment_through_its_live_region(page, live, phones, run, bob):
    add_phone(run, bob, "+447400111222", types=("voice", "sms"))
    sign_in(page, "bob")
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    region = page.locator("[role=status][data-announce]")
    expect(region).to_contain_text("We're calling")
    assert region.get_attribute("aria-live") == "polite"
    phones.wait_idle()
    phones.answer(phones.calls(to="+447400111222")[-1].sid)
    page.get_by_role("heading", name="Press # now").wait_for()
    expect(region).to_contain_text("You answered the call")


def test_the_dev_phone_keeps_focus_fits_320_pixels_and_announces_changes(browser, page, live, phones, run, bob,
                                                                         standin_server):
    add_phone(run, bob, "+447400111222", types=("voice", "sms"))
    handset = browser.new_context(viewport={"width": 320, "height": 640}).new_page()
    fits = "document.documentElement.scrollWidth <= 320"  # reflow (WCAG 1.4.10): no sideways scroll
    handset.set_default_timeout(10_000)
    handset.goto(f"{standin_server.url}/phone")
    sign_in(page, "bob")
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    answer = handset.get_by_role("button", name="Answer")
    answer.wait_for()
    assert handset.evaluate(fits)
    status = handset.locator("#phone-status")
    assert status.get_attribute("role") == "status"
    expect(status).to_contain_text("ringing")
    answer.focus()
    handset.keyboard.press("Enter")
    handset.get_by_role("button", name="#").wait_for()
    # Focus moved to the keypad that replaced the Answer button, not lost to the page's body.
    assert handset.evaluate("document.activeElement.closest('.keypad') !== null")
    assert handset.evaluate(fits)
    handset.get_by_role("button", name="#").focus()
    handset.keyboard.press("Enter")
    page.get_by_text("You're signed in").wait_for()
    expect(status).to_contain_text("The call has ended.")
    assert handset.evaluate("document.activeElement !== document.body")
    assert handset.evaluate(fits)
    handset.context.close()
