"""Security info's 10-minute change window (WCAG 2.2.1): the pages say how long is left, warn 2 minutes
before the end with a way to confirm it's you again, and a change refused after the end is kept and
shown filled in once the same person has signed in again (never applied by itself, never shown to
someone else).

The clock is the app's FixedClock (moved by the tests); pages count down from the seconds it gives.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import AppPassword, User
from tests.browser_steps import app_step, password_step, post_form
from tests.helpers import add_phone
from tests.personas import MOBILE, PASSWORD, person
from tests import test_pages_browser as pages
from tests.test_pages_browser import CHROMIUM, shot, sign_in, texted_code
from tests.test_remember_browser import SECRET, with_app

# The browser fixtures under their own names: a test naming one as a parameter finds it here.
chromium, browser, page = pages.chromium, pages.browser, pages.page
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
OLIVE = "+447400999888"
KEPT_NOTICE = "You signed in again. Check your change and select '{}' to save it."


def app_passwords(run) -> list[str]:
    return run(lambda db, svc: list(db.scalars(select(AppPassword.name))))


def signed_in_by_text(page, phones, username: str, number: str) -> None:
    sign_in(page, username)
    page.get_by_label("Code", exact=True).fill(texted_code(phones, number))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're signed in").wait_for()


@pytest.fixture
def bob_by_text(run, bob):
    """bob with a mobile that gets texts."""
    add_phone(run, bob, MOBILE, types=("sms",))
    return bob


def sign_in_again_by_text(page, phones, username: str, number: str) -> None:
    """On the "Sign in again" page: the password, then the texted code."""
    page.get_by_role("heading", name="Sign in again").wait_for()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code", exact=True).fill(texted_code(phones, number))
    page.get_by_role("button", name="Verify").click()


@needs_chromium
def test_the_pages_say_how_long_is_left_and_warn_with_a_way_to_confirm_again(page, live, phones, run, clock,
                                                                             bob_by_text):
    signed_in_by_text(page, phones, "bob", MOBILE)
    clock.advance(minutes=3)
    page.goto("/security-info")
    window = page.locator(".app-time-limit")
    expect(window).to_contain_text("You have 7 minutes left.")
    expect(page.get_by_role("link", name="Confirm it's you again")).to_be_hidden()  # not due yet

    clock.advance(minutes=5, seconds=30)  # 1 minute 30 seconds left
    page.goto("/app-passwords")
    link = page.get_by_role("link", name="Confirm it's you again")
    expect(link).to_be_visible()
    expect(page.locator("[data-time-limit-announce]")).to_have_text(
        "You have 2 minutes left to make changes. To make changes after that, confirm it's you again.")
    shot(page, "change-window-warning")

    # Inside the window too, the link asks for the password and second step, then comes back.
    link.click()
    sign_in_again_by_text(page, phones, "bob", MOBILE)
    page.wait_for_url(re.compile(r".*/app-passwords$"))
    expect(window).to_contain_text("You have 10 minutes left.")
    expect(link).to_be_hidden()


@pytest.fixture
def paused_page(page):
    """The page's time moves only when the test says (run_for); running again before axe-core's
    last check of the page (its timers would otherwise never fire, and the check never end)."""
    page.clock.install()
    page.clock.pause_at(time.time() + 5)
    yield page
    page.clock.resume()


@needs_chromium
def test_an_open_page_counts_down_then_warns_then_says_the_time_is_up(paused_page, live, clock, dave):
    page = paused_page
    sign_in(page, "dave")  # no second step for dave
    page.get_by_text("You're signed in").wait_for()
    clock.advance(minutes=6)
    page.goto("/security-info")
    page.wait_for_load_state()  # app.js has run
    left = page.locator("[data-time-limit-left]")
    link = page.get_by_role("link", name="Confirm it's you again")
    announce = page.locator("[data-time-limit-announce]")
    expect(left).to_have_text("4 minutes")
    page.clock.run_for(61_000)
    expect(left).to_have_text("3 minutes")
    expect(link).to_be_hidden()
    expect(announce).to_have_text("")
    page.clock.run_for(60_000)  # 1 minute 59 seconds left: the warning is due
    expect(link).to_be_visible()
    expect(announce).to_have_text(
        "You have 2 minutes left to make changes. To make changes after that, confirm it's you again.")
    page.clock.run_for(120_000)
    ended = "Your time to make changes has run out. Confirm it's you again before you make a change."
    expect(announce).to_have_text(ended)
    expect(page.locator("[data-time-limit-text]")).to_have_text(ended)
    expect(left).to_be_hidden()  # no "less than a minute left" beside it
    expect(link).to_be_visible()


@needs_chromium
def test_a_name_typed_after_the_window_closed_waits_for_signing_in_again(page, live, phones, run, clock, bob_by_text):
    signed_in_by_text(page, phones, "bob", MOBILE)
    page.goto("/app-passwords")
    page.get_by_label("Name").fill("Outlook on my laptop")
    clock.advance(minutes=11)
    page.get_by_role("button", name="Create app password").click()
    page.wait_for_url(re.compile(r".*/sign-in\?next=(%2F|/)app-passwords$"))

    sign_in_again_by_text(page, phones, "bob", MOBILE)
    page.wait_for_url(re.compile(r".*/app-passwords$"))
    expect(page.get_by_role("status")).to_have_text(KEPT_NOTICE.format("Create app password"))
    expect(page.get_by_label("Name")).to_have_value("Outlook on my laptop")
    assert app_passwords(run) == []  # not created until they say so

    page.get_by_role("button", name="Create app password").click()
    page.get_by_role("link", name="Done").wait_for()
    assert app_passwords(run) == ["Outlook on my laptop"]
    page.goto("/app-passwords")  # shown once: the kept name has gone
    expect(page.get_by_label("Name")).to_have_value("")


@needs_chromium
def test_someone_else_signing_in_on_that_browser_never_sees_what_was_kept(page, live, phones, run, clock,
                                                                          bob_by_text):
    add_phone(run, person(run, "olive", role="admin", region="england"), OLIVE, types=("sms",))
    signed_in_by_text(page, phones, "bob", MOBILE)
    page.goto("/app-passwords")
    page.get_by_label("Name").fill("Bob's private laptop")
    clock.advance(minutes=11)
    page.get_by_role("button", name="Create app password").click()

    sign_in_again_by_text(page, phones, "olive", OLIVE)
    page.wait_for_url(re.compile(r".*/app-passwords$"))
    expect(page.get_by_label("Name")).to_have_value("")
    assert "Bob's private laptop" not in page.content()
    expect(page.get_by_text("You signed in again.")).to_have_count(0)

    # Nor does bob, signing in after her on that browser: it went when she signed in.
    page.get_by_role("button", name="Sign out").click()
    clock.advance(seconds=31)
    signed_in_by_text(page, phones, "bob", MOBILE)
    page.goto("/app-passwords")
    expect(page.get_by_label("Name")).to_have_value("")
    assert app_passwords(run) == []


# --- without a browser: what is kept, and a kept choice on security info ----------------------


def kept_in(client) -> dict | None:
    with client.session_transaction() as data:
        return data.get("kept_form")


def test_what_is_kept_is_bounded_and_never_a_password_or_token(client, clock, dave):
    password_step(client, "dave")  # no second step for dave
    clock.advance(minutes=11)
    fields = {"name": "Outlook", "password": PASSWORD, "app_password": "abcd", "code": "123456",
              "api_token": "t", "long": "x" * 201, **{f"extra{i}": str(i) for i in range(20)}}
    response = post_form(client, "/app-passwords", fields, token_from="/app-passwords")
    assert response.status_code == 302 and "/sign-in?next=" in response.headers["Location"]
    kept = kept_in(client)
    assert kept is not None and kept["path"] == "/app-passwords" and kept["action"] == "web.app_password_create"
    assert kept["fields"] == {"name": "Outlook", **{f"extra{i}": str(i) for i in range(9)}}
    assert PASSWORD not in str(kept) and "123456" not in str(kept) and "csrf" not in str(kept)


def test_nothing_is_kept_from_a_change_refused_inside_the_window_or_for_another_page(client, clock, dave):
    password_step(client, "dave")
    response = post_form(client, "/app-passwords", {"name": "Outlook"}, token_from="/app-passwords")
    assert response.status_code == 303  # inside the window: created at once
    assert kept_in(client) is None
    clock.advance(minutes=11)
    post_form(client, "/app-passwords", {"name": "Thunderbird"}, token_from="/app-passwords")
    password_step(client, "dave", next_url="/app-passwords")
    assert "Thunderbird" not in client.get("/security-info").get_data(as_text=True)
    assert kept_in(client) is not None  # still waiting for its own page
    assert 'value="Thunderbird"' in client.get("/app-passwords").get_data(as_text=True)


def test_someone_else_signing_in_drops_what_was_kept_at_once(client, run, clock, dave):
    person(run, "olive", role="user", region="wales")
    password_step(client, "dave")
    clock.advance(minutes=11)
    post_form(client, "/app-passwords", {"name": "Dave's laptop"}, token_from="/app-passwords")
    assert kept_in(client) is not None
    password_step(client, "olive", next_url="/app-passwords")  # on dave's "Sign in again" page
    assert kept_in(client) is None  # gone with his session, before any page could show it


@pytest.fixture
def remembering(app_config):
    app_config["REMEMBER_BROWSER_DAYS"] = "30"  # (list before client)


def test_a_kept_language_survives_the_remember_question_and_is_not_saved_by_itself(remembering, client, run,
                                                                                   clock):
    erin = with_app(run, "erin")
    password_step(client, "erin")
    app_step(client, SECRET, clock)
    client.get("/verify")
    clock.advance(minutes=11)
    response = post_form(client, "/security-info/language", {"language": "cy-GB"}, token_from="/security-info")
    assert response.headers["Location"].endswith("/sign-in?next=/security-info")

    password_step(client, "erin", next_url="/security-info")
    app_step(client, SECRET, clock)
    assert client.get("/verify").headers["Location"].endswith("/remember-browser")
    answered = post_form(client, "/remember-browser", {"remember": "no"}, token_from="/remember-browser")
    assert answered.headers["Location"].endswith("/security-info")

    html = client.get("/security-info").get_data(as_text=True)
    assert KEPT_NOTICE.format("Save language") in html
    assert re.search(r'<option value="cy-GB"[^>]*selected', html)
    assert run(lambda db, svc: db.get(User, erin.id).language) != "cy-GB"


def phone_not_default(run, person) -> str:
    """A texting phone beside the person's default app: its radio is not chosen until something chooses it."""
    add_phone(run, person, MOBILE, types=("sms",))

    def second(db, svc):
        phone = next(m for m in db.get(User, person.id).methods if m.type == "sms")
        phone.is_default = False
        return phone.id

    return run(second)


def default_change_refused_for_want_of_a_recent_sign_in(client, run, clock) -> str:
    """erin, signed in 11 minutes ago, chooses her phone as the default: refused, and kept."""
    erin = with_app(run, "erin")
    phone_id = phone_not_default(run, erin)
    password_step(client, "erin")
    app_step(client, SECRET, clock)
    client.get("/verify")
    clock.advance(minutes=11)
    post_form(client, "/security-info/default", {"method_id": phone_id}, token_from="/security-info")
    return phone_id


def test_a_kept_default_method_is_shown_chosen(client, run, clock):
    phone_id = default_change_refused_for_want_of_a_recent_sign_in(client, run, clock)
    password_step(client, "erin", next_url="/security-info")
    app_step(client, SECRET, clock)
    client.get("/verify")
    html = client.get("/security-info").get_data(as_text=True)
    assert re.search(rf'value="{phone_id}" checked', html)
    assert KEPT_NOTICE.format("Save default") in html


def test_a_form_kept_for_someone_else_is_never_shown(client, run, clock):
    """The kept form names its person: one in a session that now belongs to another is dropped, not shown."""
    person(run, "olive", role="user", region="wales")
    password_step(client, "olive")
    with client.session_transaction() as data:
        data["kept_form"] = {"user": "someone-else", "path": "/app-passwords", "action": "web.app_password_create",
                             "fields": {"name": "Not olive's"}}
    assert "Not olive&#39;s" not in client.get("/app-passwords").get_data(as_text=True)
    assert kept_in(client) is None


def test_a_kept_form_is_dropped_after_fifteen_minutes_not_shown_sign_ins_later(client, run, clock):
    """Kept to survive signing in again, not to surprise the person on a later visit."""
    phone_id = default_change_refused_for_want_of_a_recent_sign_in(client, run, clock)
    clock.advance(minutes=15)
    password_step(client, "erin", next_url="/security-info")
    app_step(client, SECRET, clock)
    client.get("/verify")
    html = client.get("/security-info").get_data(as_text=True)
    assert KEPT_NOTICE.format("Save default") not in html
    assert not re.search(rf'value="{phone_id}" checked', html)
