"""Nobody gets lost (issue 12, items 3 and 7): an expired sign-in is explained wherever the person
is, every step of a sign-in or a change has a way back and a way out, and the sign-in page knows
who is already signed in. Each test starts from the page a person would be on, in Chromium.

Screenshots go to $SCREENSHOT_DIR when set, at desktop and phone widths.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import add_phone
from tests.personas import PASSWORD
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page, sized_page: fixtures used here)
    CHROMIUM, browser, chromium, page, shot, sign_in, sized_page, texted_code)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
MOBILE = "+447400123456"
TIMED_OUT = "Your sign-in timed out"


@pytest.fixture
def no_script_page(browser, live):
    """A browser with JavaScript off: nothing polls, nothing counts down, every button works."""
    context = browser.new_context(viewport={"width": 1024, "height": 800}, base_url=live.url,
                                  java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def signed_in_with_a_text(page, phones) -> None:
    page.get_by_label("Code", exact=True).fill(texted_code(phones, MOBILE))
    page.get_by_role("button", name="Verify").click()


def says_the_sign_in_timed_out(page) -> None:
    page.get_by_role("heading", name=TIMED_OUT).wait_for()
    content = page.content()
    assert "There is a problem" not in content and "not waiting" not in content and "(expired)" not in content
    assert page.title().startswith(TIMED_OUT)


# --- item 3: an expired sign-in, wherever the person is -------------------------------------------------


def test_the_failed_call_page_moves_on_to_say_the_sign_in_timed_out(sized_page, live, phones, run, bob, clock):
    page, size = sized_page
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    phones.set_behaviour(MOBILE, "busy")
    sign_in(page, "bob")
    page.get_by_role("heading", name="That call did not verify you").wait_for()
    clock.advance(minutes=10)
    says_the_sign_in_timed_out(page)  # the page polled and moved on: no click
    assert page.get_by_role("button", name="Call me again").count() == 0
    shot(page, "h2-expired-call" + size)
    page.get_by_role("link", name="Sign in again").click()
    page.get_by_role("heading", name="Sign in").wait_for()


def test_call_me_again_after_the_sign_in_expired_says_it_timed_out(no_script_page, live, phones, run, bob, clock):
    page = no_script_page
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    phones.set_behaviour(MOBILE, "busy")
    sign_in(page, "bob")
    phones.wait_idle()
    if page.get_by_role("button", name="Check again").count():  # the line was busy after the page was drawn
        page.get_by_role("button", name="Check again").click()
    page.get_by_role("heading", name="That call did not verify you").wait_for()
    clock.advance(minutes=10)
    page.get_by_role("button", name="Call me again").click()
    says_the_sign_in_timed_out(page)
    phones.wait_idle()
    assert len(phones.calls(to=MOBILE)) == 1  # no second call for a sign-in that is over


def test_a_code_typed_after_the_sign_in_expired_is_met_with_sign_in_again(sized_page, live, phones, run, bob, clock):
    page, size = sized_page
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    sign_in(page, "bob")
    code = texted_code(phones, MOBILE)
    clock.advance(minutes=10)
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Verify").click()
    says_the_sign_in_timed_out(page)
    assert page.get_by_role("link", name="Sign in again").get_attribute("href") == "/sign-in"
    shot(page, "h2-expired-code" + size)


def test_registering_a_phone_after_the_sign_in_expired_says_it_timed_out(page, live, phones, bob, clock):
    sign_in(page, "bob")
    page.get_by_label("Authentication phone").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Phone number").fill("07400 123456")
    clock.advance(minutes=10)
    page.get_by_role("button", name="Continue").click()
    says_the_sign_in_timed_out(page)
    phones.wait_idle()
    assert phones.messages(to=MOBILE) == []


def test_a_phone_change_left_too_long_says_nothing_changed_and_leads_back_to_security_info(
        page, live, phones, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    sign_in(page, "bob")
    signed_in_with_a_text(page, phones)
    page.goto("/security-info")
    page.locator("dd", has_text="••3456").locator("xpath=..").get_by_role("button", name="Change").click()
    page.get_by_label("Phone number").fill("07400 654321")
    clock.advance(minutes=10)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Your change timed out").wait_for()
    assert "Nothing has been changed" in page.content()
    shot(page, "h2-expired-change")
    page.get_by_role("link", name="Go to security info").click()
    page.wait_for_url("**/security-info")
    assert "••3456" in page.content() and "••4321" not in page.content()
    page.locator("dd", has_text="••3456").locator("xpath=..").get_by_role("button", name="Change").click()
    page.get_by_role("heading", name="Sign in again").wait_for()  # 10 minutes on: the password first


# --- item 7: Back, Cancel and Sign out on every step --------------------------------------------------


def test_each_registration_step_goes_back_one_step(sized_page, live, phones, bob):
    page, size = sized_page
    sign_in(page, "bob")
    page.wait_for_url("**/register")
    shot(page, "h2-register-choose" + size)
    page.get_by_label("Authentication phone").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Phone number").fill("07400 123456")
    shot(page, "h2-register-phone" + size)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/verify")
    shot(page, "h2-register-verify" + size)
    page.get_by_role("link", name="Back").click()
    page.wait_for_url("**/register/phone/mobile")
    page.get_by_role("link", name="Back").click()
    page.wait_for_url("**/register")
    page.get_by_label("Authenticator app (recommended)").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Set up your authenticator app").wait_for()
    shot(page, "h2-register-app" + size)
    page.get_by_role("link", name="Back").click()
    page.wait_for_url("**/register")


def test_cancelling_the_first_registration_leaves_nobody_signed_in(page, live, bob):
    sign_in(page, "bob")
    page.get_by_label("Authentication phone").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Cancel signing in").click()
    page.get_by_text("You cancelled signing in.").wait_for()
    assert page.get_by_role("heading", name="Sign in").is_visible()
    page.goto("/register")  # the sign-in under way is gone from this browser
    page.wait_for_url("**/sign-in")
    page.goto("/account")
    page.wait_for_url(re.compile(r".*/sign-in\?next=(%2F|/)account$"))


def test_a_person_can_sign_out_during_the_first_registration(page, live, bob):
    sign_in(page, "bob")
    page.wait_for_url("**/register")
    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    page.get_by_text("You have signed out.").wait_for()
    assert page.get_by_role("banner").get_by_role("button", name="Sign out").count() == 0
    page.goto("/register")
    page.wait_for_url("**/sign-in")


def test_a_sign_in_waiting_for_a_code_can_be_cancelled(page, live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    sign_in(page, "bob")
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    page.get_by_role("link", name="Sign in another way").click()
    page.get_by_role("link", name="Back").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    page.get_by_role("button", name="Cancel signing in").click()
    page.get_by_text("You cancelled signing in.").wait_for()
    page.goto("/verify")
    page.wait_for_url("**/sign-in")


def test_a_phone_change_goes_back_or_cancels_to_security_info(sized_page, live, phones, run, bob):
    page, size = sized_page
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    sign_in(page, "bob")
    signed_in_with_a_text(page, phones)
    page.goto("/security-info")
    change = page.locator("dd", has_text="••3456").locator("xpath=..").get_by_role("button", name="Change")
    change.click()
    page.get_by_role("link", name="Back").click()
    page.wait_for_url("**/security-info")
    change.click()
    page.get_by_label("Phone number").fill("07400 654321")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    page.get_by_role("button", name="Cancel and go back to security info").click()
    page.get_by_text("Your security info has not changed.").wait_for()
    shot(page, "h2-change-cancelled" + size)
    assert "••3456" in page.content() and "••4321" not in page.content()


def test_the_sign_in_page_sends_someone_signed_in_on_or_asks_for_the_password_again(page, live, dave, clock):
    sign_in(page, "dave")
    page.get_by_text("You're signed in").wait_for()
    page.goto("/sign-in")
    page.wait_for_url("**/account")  # no password form under a "Sign out" header
    page.goto("/sign-in?next=/app-passwords")
    page.wait_for_url("**/app-passwords")
    clock.advance(minutes=11)
    page.goto("/sign-in?next=/security-info")
    page.get_by_role("heading", name="Sign in again").wait_for()
    assert page.get_by_label("Username").input_value() == "dave"
    shot(page, "h2-sign-in-again")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/security-info")


# --- item 7: the call page says what is true, with and without JavaScript -----------------------------


def test_after_a_failed_call_the_page_no_longer_asks_to_answer_it(page, live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    phones.set_behaviour(MOBILE, "no-answer")
    sign_in(page, "bob")
    page.get_by_role("heading", name="That call did not verify you").wait_for()
    assert page.get_by_role("heading", name="Answer the call").count() == 0
    assert page.get_by_role("button", name="Check again").count() == 0
    assert page.get_by_role("button", name="Call me again").is_visible()
    assert page.locator("text=moves on by itself >> visible=true").count() == 0


def test_without_javascript_the_call_page_offers_check_again_and_promises_nothing(no_script_page, live, phones,
                                                                                  run, bob):
    page = no_script_page
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    sign_in(page, "bob")
    page.wait_for_url("**/verify")
    assert page.locator("text=moves on by itself >> visible=true").count() == 0
    phones.wait_idle()
    sid = phones.calls(to=MOBILE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    page.get_by_role("button", name="Check again").click()
    page.get_by_text("You're signed in").wait_for()
