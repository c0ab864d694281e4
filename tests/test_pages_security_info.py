"""Security info and app passwords: room between actions, "Are you sure?" before Remove and Revoke,
names that display as what they are, and a number whose answerer pressed 9 (issue 12, items 8, 9).

Each test starts from the page a person would be on, in Chromium. Screenshots go to
$SCREENSHOT_DIR when set.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import AppPassword, Method
from tests.helpers import add_phone, ring, start_sign_in
from tests.test_call_page import add_app
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page: fixtures used here)
    CHROMIUM, browser, chromium, page, shot, sign_in, texted_code)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
MOBILE = "+447400123456"


def signed_in_by_text(page, phones, username: str = "bob") -> None:
    sign_in(page, username)
    page.get_by_label("Code", exact=True).fill(texted_code(phones, MOBILE))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're signed in").wait_for()


def methods_of(run, user) -> int:
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(Method).where(Method.user_id == user.id)))


@pytest.fixture(params=[1024, 375], ids=["desktop", "phone"])
def sized_page(request, browser, live):
    context = browser.new_context(viewport={"width": request.param, "height": 800}, base_url=live.url,
                                  is_mobile=request.param < 400)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page, ("" if request.param > 400 else f"-{request.param}")
    browser.axe.check_open_pages()
    context.close()


def test_change_and_remove_stand_apart(sized_page, live, phones, run, bob):
    page, size = sized_page
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    signed_in_by_text(page, phones)
    page.goto("/security-info")
    row = page.locator(".nhsuk-summary-list__row", has_text="••3456")
    change = row.get_by_role("button", name="Change authentication phone").bounding_box()
    remove = row.get_by_role("link", name="Remove authentication phone").bounding_box()
    assert change and remove
    apart_sideways = remove["x"] - (change["x"] + change["width"])
    apart_down = remove["y"] - (change["y"] + change["height"])
    assert max(apart_sideways, apart_down) >= 8, (change, remove)  # never touching, side by side or wrapped
    shot(page, "h3-security-info-actions" + size)


def test_removing_a_phone_asks_first_and_keeping_it_changes_nothing(page, live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    add_app(live, bob)
    signed_in_by_text(page, phones)
    page.goto("/security-info")
    before = methods_of(run, bob)
    page.get_by_role("link", name="Remove authentication phone").click()
    page.get_by_role("heading", name="Are you sure you want to remove your authentication phone?").wait_for()
    assert "+44 •••• ••3456" in page.content()
    shot(page, "h3-security-info-remove")
    page.get_by_role("link", name="No, keep it").click()
    page.get_by_role("heading", name="Security info").wait_for()
    assert methods_of(run, bob) == before
    page.get_by_role("link", name="Remove authentication phone").click()
    page.get_by_role("button", name="Remove").click()
    page.get_by_text("The method has been removed.").wait_for()
    assert "••3456" not in page.content()
    assert methods_of(run, bob) == before - 2  # the phone's text and call rows


def test_revoking_an_app_password_asks_first_and_names_it(page, live, dave):
    sign_in(page, "dave")
    page.get_by_text("You're signed in").wait_for()
    page.get_by_role("link", name="App passwords").click()
    for name in ("Outlook 2010 at home", "Apple Mail on my iPad"):
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Create app password").click()
        page.get_by_role("link", name="Done").click()
    kept = page.get_by_role("link", name="Revoke Apple Mail on my iPad")
    kept.click()
    page.get_by_role("heading", name="Are you sure you want to revoke “Apple Mail on my iPad”?").wait_for()
    shot(page, "h3-app-password-revoke")
    page.get_by_role("link", name="No, keep it").click()
    page.get_by_role("link", name="Revoke Apple Mail on my iPad").click()
    page.get_by_role("button", name="Revoke app password").click()
    message = page.locator(".app-message--success")
    message.wait_for()
    assert "“Apple Mail on my iPad” has been revoked" in message.inner_text()
    assert page.get_by_role("link", name="Revoke Apple Mail on my iPad").count() == 0
    assert page.get_by_role("link", name="Revoke Outlook 2010 at home").count() == 1


@pytest.mark.parametrize("name", ["\u202eevil", "Outlook\u200b", "Mail\u2067x\u2069", "tab\there"],
                         ids=["right-to-left override", "zero-width space", "bidi isolate", "control"])
def test_an_app_password_name_that_would_display_as_something_else_is_refused(page, live, run, dave, name):
    sign_in(page, "dave")
    page.get_by_text("You're signed in").wait_for()
    page.goto("/app-passwords")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create app password").click()
    error = page.locator("#name-error")
    error.wait_for()
    assert "letters, numbers, spaces and punctuation" in error.inner_text()
    assert "name-error" in page.get_by_label("Name").get_attribute("aria-describedby")
    assert run(lambda db, svc: db.scalar(select(func.count()).select_from(AppPassword))) == 0


def test_after_nine_is_pressed_the_refused_call_is_not_offered_again(page, live, phones, run, clock, bob):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))  # calls first
    sign_in(page, "bob")
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    phones.wait_idle()
    sid = phones.calls(to=MOBILE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "9")
    page.get_by_role("heading", name="That call did not verify you").wait_for()
    assert page.get_by_role("button", name="Call me again").count() == 0
    assert page.get_by_role("button", name="Text me a code instead").count() == 1
    shot(page, "h3-after-nine")
    page.get_by_role("link", name="Sign in another way").click()
    page.get_by_role("heading", name="Sign in another way").wait_for()
    assert page.get_by_role("button", name=re.compile(r"^Call ")).count() == 0
    clock.advance(seconds=31)  # texts and calls at least 30 s apart
    page.get_by_role("button", name=re.compile(r"^Text \+44")).click()
    page.get_by_label("Code", exact=True).fill(texted_code(phones, MOBILE))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're signed in").wait_for()


def test_users_show_says_a_number_is_not_to_be_called(app, live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    shown = app.test_cli_runner().invoke(args=["users", "show", "bob"])
    assert "do not call" not in shown.output
    sid = ring(live, phones, start_sign_in(live.api, "bob", expect="mfa_required"), MOBILE)
    phones.answer(sid)
    phones.press(sid, "9")
    phones.wait_idle()
    shown = app.test_cli_runner().invoke(args=["users", "show", "bob"])
    voice = next(line for line in shown.output.splitlines() if " voice " in line)
    assert re.search(r"do not call since \d{4}-\d\d-\d\d \d\d:\d\d UTC: 9 was pressed", voice), shown.output


def test_the_language_setting_says_calls_and_texts_and_marks_welsh(page, live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    signed_in_by_text(page, phones)
    page.goto("/security-info")
    page.get_by_role("heading", name="Language for calls and texts").wait_for()
    language = page.get_by_label("Our calls and texts to you are in")
    assert language.locator("option[value='cy-GB']").get_attribute("lang") == "cy"
    language.select_option("cy-GB")
    page.get_by_role("button", name="Save language").click()
    page.get_by_text("The language for your calls and texts has been changed.").wait_for()
