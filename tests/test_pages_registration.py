"""Registering and changing a phone, and app passwords, without dead ends (issue 12, items 2, 4 and 8).

Each test starts from the page a person would be on, in Chromium. Screenshots go to
$SCREENSHOT_DIR when set.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import AppPassword
from mfa import phone_registration
from mfa.errors import NotPending
from mfa.unit_of_work import Transactions
from tests.helpers import add_phone, start_sign_in
from tests.personas import PASSWORD
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page: fixtures used here)
    CHROMIUM, browser, chromium, page, shot, sign_in, texted_code)
from tests.test_voice_calls import heard

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
MOBILE = "+447400123456"
NEW_MOBILE = "+447400654321"


def app_passwords_of(run, user) -> int:
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(AppPassword)
                                         .where(AppPassword.user_id == user.id, AppPassword.revoked_at.is_(None))))


def choose_phone(page, kind_label: str = "Authentication phone") -> None:
    page.wait_for_url("**/register")
    page.get_by_label(kind_label).check()
    page.get_by_role("button", name="Continue").click()


# --- item 2: "Resend code" and "Call me again" for a phone being registered or changed -------------


def test_resend_code_while_registering_a_phone_texts_it_again(page, live, phones, clock, bob):
    sign_in(page, "bob")
    choose_phone(page)
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    texted_code(phones, MOBILE)  # the first text arrived
    clock.advance(seconds=31)
    page.reload()
    page.get_by_role("button", name="Resend code").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    assert "Sign in another way" not in page.content() and "Choose one of your methods" not in page.content()
    assert len(phones.messages(to=MOBILE)) == 2
    newest = texted_code(phones, MOBILE)
    shot(page, "h3-register-resent")
    page.get_by_label("Code", exact=True).fill(newest)
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're set up").wait_for()


def test_call_me_again_while_registering_a_phone_calls_it_again(page, live, phones, clock, bob):
    phones.set_behaviour(MOBILE, "busy")
    sign_in(page, "bob")
    choose_phone(page)
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_label("Call me").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="That call did not verify you").wait_for()
    phones.set_behaviour(MOBILE, "ring")
    clock.advance(seconds=31)
    page.reload()
    page.get_by_role("button", name="Call me again").click()
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    phones.wait_idle()
    calls = phones.calls(to=MOBILE)
    assert len(calls) == 2
    phones.answer(calls[-1].sid)
    phones.press(calls[-1].sid, "#")
    page.get_by_text("You're set up").wait_for()


def test_resend_code_while_changing_a_phone_stays_on_the_new_number(page, live, phones, clock, run, bob):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    sign_in(page, "bob")
    page.get_by_label("Code", exact=True).fill(texted_code(phones, MOBILE))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("link", name="Security info").click()
    page.get_by_role("button", name="Change authentication phone").click()
    page.get_by_label("Phone number").fill("07400 654321")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    clock.advance(seconds=31)
    page.reload()
    page.get_by_role("button", name="Resend code").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    assert "••4321" in page.content() and "••3456" not in page.content()  # the new number, not the old methods
    assert len(phones.messages(to=NEW_MOBILE)) == 2
    page.get_by_label("Code", exact=True).fill(texted_code(phones, NEW_MOBILE))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("Your security info has been saved.").wait_for()
    assert "••4321" in page.content()


# --- item 4: app passwords only when asked for, and post/redirect/get ----------------------------


def test_registration_creates_no_app_password_and_says_who_needs_one(page, live, phones, run, bob):
    sign_in(page, "bob")
    choose_phone(page)
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill(texted_code(phones, MOBILE))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("heading", name="Do you need an app password?").wait_for()
    content = page.content()
    assert "Outlook 2010 or older" in content and "Apple Mail" in content
    assert page.locator("#app-password").count() == 0
    shot(page, "h3-registered")
    assert app_passwords_of(run, bob) == 0
    page.get_by_role("link", name="Create an app password").click()
    page.get_by_role("heading", name="App passwords").wait_for()
    page.get_by_label("Name").fill("Apple Mail on my Mac")
    page.get_by_role("button", name="Create app password").click()
    page.get_by_role("heading", name="App password created").wait_for()
    assert app_passwords_of(run, bob) == 1


def test_reloading_the_created_app_password_page_creates_nothing(page, live, run, dave):
    sign_in(page, "dave")
    page.get_by_text("You're signed in").wait_for()
    page.get_by_role("link", name="App passwords").click()
    page.get_by_label("Name").fill("Outlook 2010 at home")
    page.get_by_role("button", name="Create app password").click()
    page.get_by_role("heading", name="App password created").wait_for()
    assert page.url.endswith("/app-passwords/created")  # a GET: the browser has no form to post again
    app_password = page.locator("#app-password").inner_text().strip()
    assert re.fullmatch(r"[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}", app_password)
    page.reload()
    page.get_by_text("An app password is shown only once").wait_for()
    assert page.locator("#app-password").count() == 0
    page.go_back()
    assert app_password not in page.content()
    assert app_passwords_of(run, dave) == 1
    assert live.api.post("/app-passwords/verify", {"username": "dave", "app_password": app_password}).status_code == 200


# --- item 8: the phone pages' wording and rules ----------------------------------------------------


def test_the_office_phone_page_talks_about_office_phones_and_refuses_a_mobile(page, live, phones, bob):
    sign_in(page, "bob")
    choose_phone(page, "Office phone (not recommended)")
    page.get_by_role("heading", name="Your office phone").wait_for()
    hint = page.locator("#number-hint").inner_text()
    assert "07400" not in hint and "0113 496 0000" in hint and "text" not in hint.lower()
    assert page.get_by_label("Text me a code").count() == 0  # office phones are only called
    shot(page, "h3-office-phone")
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_role("button", name="Call me").click()
    error = page.locator("#number-error")
    error.wait_for()
    assert "mobile number" in error.inner_text()
    assert "number-error" in page.get_by_label("Phone number").get_attribute("aria-describedby")
    phones.wait_idle()
    assert phones.calls() == [] and phones.messages() == []


def test_the_roaming_notice_comes_before_anything_is_sent(page, live, phones, bob):
    sign_in(page, "bob")
    choose_phone(page)
    page.get_by_label("Phone number").fill("+44 7797 712345")
    page.get_by_role("button", name="Continue").click()
    notice = page.locator(".nhsuk-warning-callout")
    notice.wait_for()
    assert "outside the UK" in notice.inner_text() and "charges" in notice.inner_text()
    shot(page, "h3-roaming-notice")
    phones.wait_idle()
    assert phones.messages() == [] and phones.calls() == []
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    assert len(phones.messages(to="+447797712345")) == 1


def test_a_uk_number_is_texted_at_once_without_a_roaming_notice(page, live, phones, bob):
    sign_in(page, "bob")
    choose_phone(page)
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    assert "outside the UK" not in page.content()


def test_the_language_choice_covers_calls_and_texts_and_marks_welsh(page, live, bob):
    sign_in(page, "bob")
    choose_phone(page)
    language = page.get_by_label("Language for calls and texts")
    assert language.locator("option[value='cy-GB']").get_attribute("lang") == "cy"
    assert language.locator("option[value='en-GB']").get_attribute("lang") == "en"


def test_a_registration_call_asks_to_set_the_phone_up_not_to_sign_in(page, live, phones, bob):
    sign_in(page, "bob")
    choose_phone(page)
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_label("Call me").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    phones.wait_idle()
    sid = phones.calls(to=MOBILE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    page.get_by_text("You're set up").wait_for()
    phones.wait_idle()
    assert heard(phones, sid) == "greeting | press_hash_setup | not_mine | setup_verified"


# --- the rules behind the pages, through the API ------------------------------------------------


@pytest.mark.parametrize("number, refused", [
    ("07400 123456", True),  # a UK mobile
    ("+33 6 12 34 56 78", True),  # a French mobile
    ("0113 496 0000", False),  # a UK landline
    ("+1 212 555 0123", False),  # North America: landlines and mobiles look alike, so it is allowed
])
def test_a_mobile_number_is_refused_as_an_office_phone(live, phones, bob, number, refused):
    rt = live.app.extensions["mfa"]  # calls and texts to France and the US allowed (TELEPHONY_ALLOWED_COUNTRIES)
    rt.services = dataclasses.replace(rt.services, allowed_countries=rt.services.allowed_countries | {"FR", "US"})
    auth = live.api.post("/authentications", {"username": "bob", "password": PASSWORD}).json()
    response = live.api.post(f"/authentications/{auth['id']}/registrations",
                             {"type": "phone", "number": number, "kind": "office", "delivery": "voice"})
    if refused:
        assert response.status_code == 422 and response.json()["error"] == "office_phone_is_mobile"
        assert phones.calls() == []
    else:
        assert response.status_code == 201, response.text


def test_sending_again_to_a_phone_no_longer_being_registered_says_to_choose_again(runtime, run, bob):
    auth = start_sign_in(run, "bob", expect="registration_required")
    stale = "0" * 32  # replaced by a newer attempt: no such unverified phone
    with runtime.sessions() as db, pytest.raises(NotPending) as refused:
        phone_registration.send_again(Transactions(db), runtime.services, auth["id"], stale, None)
    assert "Choose how to verify again" in refused.value.message


@pytest.fixture
def phone_page(browser, live):
    context = browser.new_context(viewport={"width": 375, "height": 800}, base_url=live.url, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    browser.axe.check_open_pages()
    context.close()


def test_the_new_registration_pages_fit_a_phone(phone_page, live, phones, bob):
    page = phone_page
    sign_in(page, "bob")
    choose_phone(page, "Office phone (not recommended)")
    page.get_by_role("heading", name="Your office phone").wait_for()
    shot(page, "h3-office-phone-375")  # shot() also checks nothing scrolls sideways
    page.get_by_role("link", name="Back").click()
    choose_phone(page)
    page.get_by_label("Phone number").fill("+44 7797 712345")
    page.get_by_role("button", name="Continue").click()
    page.locator(".nhsuk-warning-callout").wait_for()
    shot(page, "h3-roaming-notice-375")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill(texted_code(phones, "+447797712345"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("heading", name="Do you need an app password?").wait_for()
    shot(page, "h3-registered-375")
