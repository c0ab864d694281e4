"""Errors and messages on the pages: every error a browser can meet is the service's own page with a
way forward; every domain reason has a sentence for people; the resend countdown tells the truth.

Pages are driven with a Flask test client where only the HTML matters, and in Chromium (Playwright)
where a person's path or the page's script matters.
"""
from __future__ import annotations

import html
import math
import os
import re
import time
from pathlib import Path

import pytest
from flask import abort
from sqlalchemy import select

from mfa import authentications, challenges, limits, methods
from mfa.errors import InvalidCode, RateLimited
from mfa.limits import SENDS_PER_SIGN_IN, Limits
from mfa.unit_of_work import Transactions
from models import User
from models.states import AuthStatus, Reason
from tests.browser_steps import assert_accessible, password_step
from tests.conftest import PASSWORD, run_in
from tests.helpers import add_phone, post_form
from tests.personas import ALICE
from web import reasons

MAX_SENDS = Limits().number(SENDS_PER_SIGN_IN)

CHROMIUM = "/usr/bin/chromium"
WERKZEUG_WORDS = ("The requested URL was not found", "The method is not allowed", "exceeds the capacity limit",
                  "The CSRF session token is missing", "The CSRF token is missing", "Internal Server Error",
                  "Traceback")


def assert_service_page(response, status: int, heading: str, way_forward: str = "Go to the sign-in page"):
    """The service's own page: its layout and heading, a link onwards, none of Werkzeug's words."""
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == status, page
    assert response.mimetype == "text/html"
    assert 'class="nhsuk-header' in page and f"<h1>{heading}</h1>" in page, page
    assert way_forward in page, page
    for raw in WERKZEUG_WORDS:
        assert raw not in page, raw
    return page


# --- the service's own error pages ---------------------------------------------------------------


def test_an_unknown_address_is_the_services_page_not_found(client):
    page = assert_service_page(client.get("/no-such-page"), 404, "Page not found")
    assert "check you copied the entire address" in page


def test_a_missing_static_file_is_the_services_page_not_found_too(client):
    assert_service_page(client.get("/static/web/no-such-file.css"), 404, "Page not found")


def test_opening_a_form_only_address_says_so_and_keeps_the_allow_header(client):
    response = client.get("/sign-out")
    assert_service_page(response, 405, "This page cannot be opened directly")
    assert "POST" in response.headers["Allow"]


def test_a_form_too_large_is_the_services_page_and_nothing_is_saved(client):
    response = client.post("/sign-in", data={"username": "x" * 70_000, "password": PASSWORD})
    page = assert_service_page(response, 413, "What you sent is too long")
    assert "Nothing was saved" in page


def test_a_form_sent_after_the_session_was_lost_is_explained_with_the_way_back(client, dave):
    token_page = client.get("/sign-in")
    assert token_page.status_code == 200
    client.delete_cookie("session")  # the session ended: signed out in another tab, or left too long
    response = client.post("/sign-in", data={"csrf_token": "stale", "username": "dave", "password": PASSWORD},
                           headers={"Referer": "http://localhost/sign-in"})
    page = assert_service_page(response, 400, "Your form could not be sent")
    assert "Nothing was saved or changed" in page
    assert '<a href="/sign-in">Go back to the page you were on</a>' in page


def test_the_way_back_never_leads_off_site(client):
    response = client.post("/sign-in", data={"username": "dave"}, headers={"Referer": "https://evil.example/x"})
    page = assert_service_page(response, 400, "Your form could not be sent")
    assert "evil.example" not in page and "Go back to the page you were on" not in page


def test_too_many_sign_in_attempts_from_one_address_is_the_services_page(app, client, dave):
    address = {"REMOTE_ADDR": "192.0.2.129"}
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").get_data(as_text=True))
    assert token
    form = {"csrf_token": token.group(1), "username": "dave", "password": "wrong"}
    # Wrong passwords for one person from one address: the strictest limit on them (docs/limits.md).
    allowed = app.extensions["mfa"].services.limits.number(limits.SIGN_INS_PER_PERSON_AND_ADDRESS)
    answers = [client.post("/sign-in", data=form, environ_base=address) for _ in range(allowed + 1)]
    assert [a.status_code for a in answers[:allowed]].count(429) == 0
    page = assert_service_page(answers[allowed], 429, "You've tried too many times")
    assert 1 <= int(answers[allowed].headers["Retry-After"]) <= 60 and "Nothing was saved" in page


@pytest.fixture
def failing_app(app):
    """The app with pages that fail in the ways no ordinary page does on purpose."""
    def crash():
        raise RuntimeError("a bug")

    app.config["TESTING"] = False  # crashes are answered, not raised into the test
    app.add_url_rule("/_crash", "crash", crash)
    app.add_url_rule("/_forbidden", "forbidden", lambda: abort(403))
    app.add_url_rule("/_bad", "bad", lambda: abort(400))
    app.add_url_rule("/_unavailable", "unavailable", lambda: abort(503))
    app.add_url_rule("/api/v1/_crash", "api_crash", crash)
    return app


@pytest.mark.parametrize("path, status, heading", [
    ("/_crash", 500, "Sorry, there is a problem with the service"),
    ("/_forbidden", 403, "You cannot use this page"),
    ("/_bad", 400, "Sorry, we could not understand that"),
    ("/_unavailable", 503, "Sorry, the service is unavailable"),
])
def test_every_other_error_a_browser_can_meet_is_the_services_page(failing_app, path, status, heading):
    assert_service_page(failing_app.test_client().get(path), status, heading)


def test_a_signed_in_person_is_offered_their_account(failing_app, dave):
    client = failing_app.test_client()
    password_step(client, "dave")
    assert_service_page(client.get("/no-such-page"), 404, "Page not found", "Go to your account")


def test_the_api_and_the_webhooks_keep_their_own_error_answers(failing_app):
    client = failing_app.test_client()
    assert client.get("/api/v1/_crash").json["error"] == "server_error"
    assert client.get("/api/v1/no-such-thing", headers={"Authorization": "Bearer x"}).mimetype == "application/json"
    assert "nhsuk" not in client.get("/twilio/no-such-hook").get_data(as_text=True)


# --- one table of sentences for people ------------------------------------------------------------


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_a_sentence_for_people(reason):
    sentence = reasons.sentence(reason)
    assert sentence and sentence.endswith(".") and "_" not in sentence


@pytest.mark.parametrize("status", [s for s in AuthStatus if s not in (AuthStatus.APPROVED,)
                                    and s not in (AuthStatus.MFA_REQUIRED, AuthStatus.REGISTRATION_REQUIRED,
                                                  AuthStatus.PENDING)])
def test_every_final_status_without_a_reason_still_has_a_sentence(status):
    assert reasons.ending(status, None) != reasons.ENDED


def test_the_sign_in_page_uses_the_table_not_dicts_of_its_own():
    source = (Path(__file__).resolve().parent.parent / "web" / "sign_in.py").read_text(encoding="utf-8")
    assert "FAILED_CHALLENGE" not in source and "ENDED = {" not in source


@pytest.mark.parametrize("left, words", [(4, "You can try 4 more times."), (1, "You can try 1 more time.")])
def test_a_wrong_code_says_how_many_tries_are_left_in_plain_english(left, words):
    said = reasons.refusal(InvalidCode(attempts_left=left))
    assert said.endswith(words) and "tries" not in said
    assert "expired" in said  # an old code is one of the reasons it did not work


@pytest.mark.parametrize("wait, words", [(0.2, "Wait 1 second before"), (1.0, "Wait 1 second before"),
                                         (29.1, "Wait 30 seconds before")])
def test_a_wait_is_never_zero_seconds_and_is_rounded_up(live, phones, alice, clock, wait, words):
    def sign_in(db, svc):
        auth = authentications.start(db, svc, "alice", PASSWORD, None)
        return auth.id, methods.default_method(auth.user).id

    auth_id, method_id = run_in(live.app, sign_in)

    def send(db, svc):
        return challenges.start_challenge(Transactions(db), svc, auth_id, method_id, None)

    run_in(live.app, send)
    clock.advance(seconds=30 - wait)
    with pytest.raises(RateLimited) as refused:
        run_in(live.app, send)
    assert str(refused.value).startswith(words)
    assert refused.value.extra["retry_after"] == math.ceil(wait)


# --- wording on the sign-in and code pages ---------------------------------------------------------


@pytest.mark.parametrize("form, field, words", [
    ({"username": "", "password": ""}, "username", "Enter your username"),
    ({"username": "dave", "password": ""}, "password", "Enter your password"),
    ({"username": "d" * 300, "password": PASSWORD}, "username", "The username is too long: at most 254 characters."),
    ({"username": "dave", "password": "wrong"}, "password", "The username or password is incorrect."),
])
def test_sign_in_errors_are_worded_for_people_and_sit_on_their_field(client, dave, form, field, words):
    response = post_form(client, "/sign-in", form)
    page = response.get_data(as_text=True)
    assert response.status_code in (400, 401), page
    other = "password" if field == "username" else "username"
    assert f'id="{other}-error"' not in page
    assert f'id="{field}-error"' in page and f'href="#{field}"' in page
    assert words in page and "'username'" not in page and "must be a string" not in page


def test_after_reporting_fraud_the_sign_in_page_says_only_an_administrator_can_unlock(client, alice, run):
    def block(db, svc):
        user = db.scalars(select(User).where(User.username == "alice")).one()
        user.fraud_blocked_at = svc.clock.now()

    run(block)
    page = post_form(client, "/sign-in", {"username": "alice", "password": PASSWORD}).get_data(as_text=True)
    assert "only your administrator can unlock" in page


def test_an_expired_sign_in_ending_is_explained_in_words_for_people():
    said = reasons.ending(AuthStatus.EXPIRED, Reason.TIMED_OUT)
    assert "expired" in said and "Sign in again" in said and "(" not in said


# --- the resend countdown (browser) --------------------------------------------------------------

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(params=[1024, 375], ids=["desktop", "phone"])
def page(request, chromium, live):
    context = chromium.new_context(viewport={"width": request.param, "height": 800}, base_url=live.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.clock.install()  # fake timers: a test may pause them (pause_at) and move them on (run_for)
    yield page
    context.close()


def sign_in(page, username):
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def shot(page, name: str) -> None:
    folder = Path(os.environ.get("H1_SHOTS", "/tmp/h1"))
    folder.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    assert_accessible(page, name)


@needs_chromium
def test_the_resend_button_wakes_exactly_when_the_server_allows_and_never_says_0_seconds(page, live, phones,
                                                                                          run, bob, clock):
    add_phone(run, bob, ALICE, types=("sms", "voice"))
    page.clock.pause_at(time.time() + 5)  # the page's time moves only when the test says (run_for)
    sign_in(page, "bob")
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    clock.advance(seconds=0.4)  # the page seen again a part second later: 29.6 s to wait, shown as 30
    page.reload()
    page.wait_for_load_state()  # app.js has run (deferred scripts run before the load event)
    resend = page.get_by_role("button", name="Resend code")
    note = page.locator("[data-cooldown-note]")
    assert resend.is_disabled()
    assert note.inner_text() == "You can ask for a new code in 30 seconds."
    page.clock.run_for(29_000)
    clock.advance(seconds=29)
    assert note.inner_text() == "You can ask for a new code in 1 second."
    assert resend.is_disabled()  # 0.6 s before the server allows: still asleep
    page.clock.run_for(1_000)
    clock.advance(seconds=1)
    assert resend.is_enabled() and note.is_hidden()
    assert "0 seconds" not in page.content()
    page.clock.resume()
    shot(page, "countdown-over")
    resend.click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    phones.wait_idle()
    assert len(phones.messages(to=ALICE)) == 2  # the server accepted it: no "wait" refusal
    assert "Wait" not in page.locator("main").inner_text()


@needs_chromium
def test_at_the_most_sends_for_one_sign_in_the_page_offers_to_start_again(page, live, phones, run, bob, clock):
    add_phone(run, bob, ALICE, types=("sms", "voice"))
    sign_in(page, "bob")
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    for _ in range(MAX_SENDS - 1):
        clock.advance(seconds=30)
        page.goto("/verify")
        page.get_by_role("button", name="Resend code").click()
        page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    phones.wait_idle()
    assert len(phones.messages(to=ALICE)) == MAX_SENDS
    assert page.get_by_role("button", name="Resend code").count() == 0  # no button the server would refuse
    limit = page.locator("#send-limit")
    assert f"We've sent you {MAX_SENDS} codes or calls" in limit.inner_text()
    shot(page, "send-limit")
    limit.get_by_role("link", name="Start again").click()
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    phones.wait_idle()
    assert len(phones.messages(to=ALICE)) == MAX_SENDS + 1  # a new sign-in, a new code


@needs_chromium
def test_a_form_sent_after_the_session_ended_explains_it_and_leads_back_to_signing_in(page, live, dave):
    page.goto("/sign-in")
    page.context.clear_cookies()  # the session ended while the page was open
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your form could not be sent").wait_for()
    assert "CSRF" not in page.content()
    shot(page, "csrf")
    page.get_by_role("link", name="Go back to the page you were on").click()
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("You're signed in").wait_for()


@needs_chromium
def test_an_unknown_address_in_a_browser_is_the_services_styled_page(page, live):
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    page.get_by_role("heading", name="Page not found").wait_for()
    shot(page, "not-found")
    page.get_by_role("link", name="Go to the sign-in page").click()
    page.get_by_role("heading", name="Sign in").wait_for()


def test_the_locked_sentence_names_the_lockout_the_server_keeps():
    from mfa.errors import AccountLocked
    from mfa.lockout import BASE_DURATION

    assert f"try again in {int(BASE_DURATION.total_seconds() // 60)} minutes" in AccountLocked.message


@needs_chromium
def test_an_expired_texted_code_says_it_may_have_expired_and_offers_a_new_one(page, live, phones, run, bob, clock):
    add_phone(run, bob, ALICE, types=("sms", "voice"))
    sign_in(page, "bob")
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    phones.wait_idle()
    code = re.search(r"(\d{6})$", phones.messages(to=ALICE)[-1].body)
    assert code
    clock.advance(minutes=5, seconds=1)
    page.get_by_label("Code", exact=True).fill(code.group(1))
    page.get_by_role("button", name="Verify").click()
    summary = page.locator(".nhsuk-error-summary")
    summary.wait_for()
    assert "expires after 5 minutes. Ask for a new code." in summary.inner_text()
    assert "Start a challenge" not in summary.inner_text()  # the API's words of old
    shot(page, "expired-code")
    page.get_by_role("button", name="Resend code").click()
    page.get_by_role("heading", name="Enter the code we texted you").wait_for()
    phones.wait_idle()
    assert len(phones.messages(to=ALICE)) == 2
