"""The pages of push approvals ("Mobile app (notifications)"): setting a phone up in the registration
wizard and in security info, the number on the verify page, and the fatigue limit.

The browser is the Flask test client; the phone is a second test client signing its requests as the
reference authenticator does (authenticator/signing.py); the last test drives Chromium through the
same pages. Screenshots go to $SCREENSHOT_DIR when set.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from authenticator import signing
from models import BrowserSession, Challenge, Method, PushDevice
from mfa import challenges, push_enrolment
from mfa.unit_of_work import Transactions
from tests.browser_steps import password_step, post_form
from tests.helpers import add_phone, matched, response_json, start_sign_in
from tests.personas import MOBILE, PASSWORD
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, sized_page: fixtures used here)
    CHROMIUM, browser, chromium, shot, sized_page)

LINK = r'href="(http://localhost/app#enrol=[A-Za-z0-9_-]+)"'


class Phone:
    """The phone app: its own key, and its device id once enrolled. No cookies: a client of its own."""

    def __init__(self, client, clock):
        self.client, self.clock = client, clock
        self.key = signing.new_private_key()
        self.device_id = ""

    def call(self, method: str, path: str, body: dict | None = None):
        raw = json.dumps(body).encode() if body is not None else b""
        headers = signing.sign_request(self.key, method, path, raw, self.device_id,
                                       now=int(self.clock.now().timestamp()))
        return self.client.open(path, method=method, data=raw, headers={**headers, "Content-Type": "application/json"})

    def enrol(self, link: str, name: str = "Pixel") -> None:
        token = link.split("#enrol=")[1]
        answer = self.call("POST", "/device/v1/enrol",
                           {"token": token, "public_key": signing.public_key_b64(self.key), "name": name})
        assert answer.status_code == 201, response_json(answer)
        self.device_id = response_json(answer)["device_id"]

    def waiting(self) -> list[dict]:
        answer = self.call("GET", "/device/v1/requests")
        assert answer.status_code == 200, response_json(answer)
        return response_json(answer)["requests"]

    def approve(self, number: str) -> None:
        [request] = self.waiting()
        answer = self.call("POST", f"/device/v1/requests/{request['id']}/approve", {"number": number})
        assert answer.status_code == 200, response_json(answer)


def text(response) -> str:
    return response.get_data(as_text=True)


def pending_number(run) -> str:
    """The number of the push waiting now (one at most: a newer one replaces the older)."""
    return run(lambda db, svc: db.scalars(select(Challenge.number_match).where(
        Challenge.type == "push", Challenge.status == "pending")).one())


def shown_number(page: str) -> str:
    return matched(r'class="app-number-match"><span class="nhsuk-u-visually-hidden">Number to enter: </span>(\d+)<',
                   page).group(1)


def pushes(run) -> int:
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(Challenge).where(Challenge.type == "push")))


def devices(run) -> int:
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(PushDevice)))


def chose_push(client) -> str:
    """bob's first sign-in: the password, then "Mobile app (notifications)"; the set-up page."""
    assert password_step(client, "bob").headers["Location"].endswith("/register")
    chosen = post_form(client, "/register", {"method": "push"}, token_from="/register")
    assert chosen.status_code == 302 and chosen.headers["Location"].endswith("/register/push")
    return text(client.get("/register/push"))


def add_text_phone(run, user) -> None:
    """A second way to verify, not the default: the phone app stays the one a sign-in starts with."""
    [text_id] = add_phone(run, user, MOBILE, types=("sms",))
    run(lambda db, svc: setattr(db.get(Method, text_id), "is_default", False))


def registered_phone(runtime, run, app, clock, username: str = "bob") -> Phone:
    """A person whose phone app is set up (through the domain and the device API, not the pages)."""
    auth_id = start_sign_in(run, username, expect="registration_required")["id"]
    link, method_id = run(lambda db, svc: (lambda e: (e.url, e.method.id))(
        push_enrolment.register_push(db, svc, auth_id, "127.0.0.1")))
    phone = Phone(app.test_client(), clock)
    phone.enrol(link)
    with runtime.sessions() as s:
        number = challenges.start_challenge(Transactions(s), runtime.services, auth_id, method_id, None).number_match
    assert number is not None  # every push has one
    phone.approve(number)
    return phone


# --- the registration wizard --------------------------------------------------------------------------


def test_the_wizard_offers_the_phone_app_and_shows_its_link_as_a_qr_code_and_a_link(client, run, bob):
    password_step(client, "bob")
    choose = text(client.get("/register"))
    assert 'value="push"' in choose and "Mobile app (notifications)" in choose
    page = chose_push(client)
    link = matched(LINK, page).group(1)
    assert link in re.sub(r"<[^>]+>", "", page)  # also as text, to copy
    assert "Paste the set-up link" in page and "Add to Home Screen" in page  # the iPhone note (the app's field)
    assert "expires in 10 minutes" in page
    qr = client.get(matched(r'<img class="app-qr" src="([^"]+)"', page).group(1))
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml"
    assert text(qr).lstrip().startswith(("<?xml", "<svg")) and "<path" in text(qr)
    assert "no-store" in qr.headers["Cache-Control"]
    # The link lives on the server (the flow, in the session's row), encrypted there too; never in a cookie.
    token = link.split("#enrol=")[1]
    assert all(token not in c.value for c in client._cookies.values())
    stored = run(lambda db, svc: list(db.scalars(select(BrowserSession.data))))
    assert stored and all(token not in data for data in stored)


def test_i_have_added_my_phone_before_the_phone_has_says_not_yet(client, bob):
    chose_push(client)
    assert client.get("/register/push/status.json").json["status"] == "waiting"
    pressed = post_form(client, "/register/push", token_from="/register/push", follow_redirects=True)
    assert "We have not heard from your phone yet" in text(pressed)
    assert "Set up notifications on your phone" in text(pressed)  # still the set-up page


def test_an_expired_set_up_link_is_said_and_a_new_one_replaces_it(app, client, clock, bob):
    first = matched(LINK, chose_push(client)).group(1)
    clock.advance(minutes=9)
    post_form(client, "/sign-in/more-time", {"next": "/register/push"}, token_from="/register/push")
    clock.advance(minutes=2)  # the sign-in goes on (more time); the link has had its 10 minutes
    assert client.get("/register/push/status.json").json["status"] == "expired"
    page = text(client.get("/register/push"))
    assert "Your set-up link has expired" in page and first not in page and "app-qr" not in page
    post_form(client, "/register", {"method": "push"}, token_from="/register/push")
    second = matched(LINK, text(client.get("/register/push"))).group(1)
    assert second != first
    late = Phone(app.test_client(), clock)
    answer = late.call("POST", "/device/v1/enrol", {"token": first.split("#enrol=")[1],
                                                    "public_key": signing.public_key_b64(late.key), "name": "Old"})
    assert answer.status_code == 410
    late.enrol(second)
    assert client.get("/register/push/status.json").json["status"] == "enrolled"


def test_the_first_request_shows_its_number_and_approving_it_finishes_registration(app, client, run, clock, bob):
    phone = Phone(app.test_client(), clock)
    phone.enrol(matched(LINK, chose_push(client)).group(1), name="Pixel 8")
    assert client.get("/register/push/status.json").json["status"] == "enrolled"
    started = post_form(client, "/register/push", token_from="/register/push")
    assert started.headers["Location"].endswith("/verify")
    page = text(client.get("/verify"))
    assert "Approve the request on your phone" in page
    assert "Open the request on your phone and enter this number" in page
    assert shown_number(page) == pending_number(run)
    assert "expires in 2 minutes" in page
    assert client.get("/verify/status.json").json["status"] == "pending"
    phone.approve(shown_number(page))
    assert client.get("/verify/status.json").json["status"] == "approved"  # the page's poll moves on
    done = client.get("/verify")
    assert done.status_code == 302 and "/register/done" in done.headers["Location"]


def test_while_registering_a_request_not_answered_in_time_can_be_sent_again(app, client, run, clock, bob):
    phone = Phone(app.test_client(), clock)
    phone.enrol(matched(LINK, chose_push(client)).group(1))
    post_form(client, "/register/push", token_from="/register/push")
    clock.advance(seconds=121)
    page = text(client.get("/verify"))
    assert "The request on your phone was not answered within 2 minutes." in page
    assert "Choose a different method" in page and "Sign in another way" not in page
    method_id = matched(r'name="method_id" value="([0-9a-f]{32})"', page).group(1)
    post_form(client, "/verify/method", {"method_id": method_id}, token_from="/verify")
    again = text(client.get("/verify"))
    assert shown_number(again) == pending_number(run)
    phone.approve(shown_number(again))
    assert "/register/done" in client.get("/verify").headers["Location"]


def test_a_wrong_number_on_the_phone_stops_the_registration(app, client, run, clock, bob):
    phone = Phone(app.test_client(), clock)
    phone.enrol(matched(LINK, chose_push(client)).group(1))
    post_form(client, "/register/push", token_from="/register/push")
    wrong = "11" if shown_number(text(client.get("/verify"))) != "11" else "12"
    [request] = phone.waiting()
    assert phone.call("POST", f"/device/v1/requests/{request['id']}/approve", {"number": wrong}).status_code == 422
    ended = client.get("/verify")
    assert ended.status_code == 409 and "did not match the one on this screen" in text(ended)


# --- security info ---------------------------------------------------------------------------------


def test_security_info_lists_the_phone_and_adding_another_uses_the_same_set_up(app, client, runtime, run, clock,
                                                                             bob):
    phone = Phone(app.test_client(), clock)
    phone.enrol(matched(LINK, chose_push(client)).group(1), name="Pixel 8")
    post_form(client, "/register/push", token_from="/register/push")
    phone.approve(shown_number(text(client.get("/verify"))))
    client.get("/verify")  # signed in
    page = text(client.get("/security-info"))
    assert "Mobile app (notifications)" in page
    row = matched(r'<dt class="nhsuk-summary-list__key">Pixel 8</dt>\s*<dd[^>]*>([^<]*)</dd>', page).group(1)
    assert "Added 28 November 2026." in row and "Last used 28 November 2026." in row
    assert "Approve a request on my phone (Mobile app: Pixel 8)" in page  # the default method's choice

    added = post_form(client, "/security-info/push", token_from="/security-info")
    assert added.headers["Location"].endswith("/register/push")
    second = Phone(app.test_client(), clock)
    second.enrol(matched(LINK, text(client.get("/register/push"))).group(1), name="iPad")
    post_form(client, "/register/push", token_from="/register/push")
    assert len(phone.waiting()) == 0 and len(second.waiting()) == 1  # only the phone being added is asked
    second.approve(shown_number(text(client.get("/verify"))))
    saved = client.get("/verify", follow_redirects=True)
    assert "Your security info has been saved." in text(saved)
    assert "Pixel 8" in text(saved) and "iPad" in text(saved) and "Not used yet" not in text(saved)


def test_removing_a_phone_app_asks_first_and_needs_a_recent_sign_in(app, client, runtime, run, clock, bob):
    phone = registered_phone(runtime, run, app, clock)
    add_text_phone(run, bob)  # not the only way to verify: it may be removed
    clock.advance(minutes=6)
    password_step(client, "bob")
    phone.approve(shown_number(text(client.get("/verify"))))
    client.get("/verify")
    method_id = run(lambda db, svc: db.scalars(select(PushDevice.method_id)).one())
    confirm = text(client.get(f"/security-info/remove/{method_id}"))
    assert "Are you sure you want to remove your phone app?" in confirm
    assert "sign-in requests to <strong>Pixel</strong>" in confirm

    clock.advance(minutes=11)  # no longer a recent sign-in
    refused = post_form(client, "/security-info/remove", {"method_id": method_id}, token_from="/security-info")
    assert "/sign-in" in refused.headers["Location"] and devices(run) == 1

    password_step(client, "bob", next_url="/security-info")
    phone.approve(shown_number(text(client.get("/verify"))))
    client.get("/verify")
    removed = post_form(client, "/security-info/remove", {"method_id": method_id}, token_from="/security-info",
                        follow_redirects=True)
    assert "The method has been removed." in text(removed) and "Pixel" not in text(removed)
    assert devices(run) == 0
    assert phone.call("GET", "/device/v1/requests").status_code == 401  # the phone can do nothing now


# --- signing in with the phone app ------------------------------------------------------------------


def test_a_sign_in_whose_default_is_the_phone_app_sends_a_request_and_shows_its_number(app, client, runtime, run,
                                                                                       clock, bob):
    phone = registered_phone(runtime, run, app, clock)
    before = pushes(run)
    assert password_step(client, "bob").headers["Location"].endswith("/verify")
    assert pushes(run) == before + 1  # started by itself
    page = text(client.get("/verify"))
    assert "Approve the request on your phone" in page and shown_number(page) == pending_number(run)
    assert 'data-poll="/verify/status.json"' in page
    assert "Sign in another way" in page
    other = text(client.get("/verify/other"))
    assert "Approve a request on my phone (Mobile app: Pixel)" in other
    phone.approve(shown_number(page))
    finished = client.get("/verify")
    assert finished.status_code == 302 and finished.headers["Location"].endswith(("/account", "/remember-browser"))


def test_a_request_not_answered_in_time_says_so_and_a_new_one_has_a_new_number(app, client, runtime, run, clock,
                                                                               bob):
    registered_phone(runtime, run, app, clock)
    clock.advance(minutes=6)
    password_step(client, "bob")
    clock.advance(seconds=121)
    page = text(client.get("/verify"))
    assert "The request on your phone was not answered within 2 minutes." in page
    assert "app-number-match" not in page and "Send a new request" in page
    method_id = matched(r'name="method_id" value="([0-9a-f]{32})"', page).group(1)
    post_form(client, "/verify/method", {"method_id": method_id}, token_from="/verify")
    again = text(client.get("/verify"))
    assert "Approve the request on your phone" in again and shown_number(again) == pending_number(run)


def test_the_fourth_request_in_five_minutes_is_refused_and_points_at_another_way(app, client, runtime, run, clock,
                                                                                 bob):
    registered_phone(runtime, run, app, clock)
    add_text_phone(run, bob)
    clock.advance(minutes=6)  # the registration's request is out of the window
    password_step(client, "bob")  # the first
    method_id = run(lambda db, svc: db.scalars(select(Method.id).where(Method.type == "push")).one())
    for _ in range(2):  # the second and third
        post_form(client, "/verify/method", {"method_id": method_id}, token_from="/verify")
    assert '<a class="nhsuk-button" href="/verify/other">' not in text(client.get("/verify"))  # not yet
    post_form(client, "/verify/method", {"method_id": method_id}, token_from="/verify")  # the fourth
    assert pushes(run) == 4  # the registration's and three
    page = text(client.get("/verify"))
    assert "We have sent 3 requests to your phone in the last 5 minutes." in page
    assert re.search(r'<a class="nhsuk-button" href="/verify/other">Sign in another way</a>', page)
    assert shown_number(page) == pending_number(run)  # the third request can still be approved
    assert "Text +44" in text(client.get("/verify/other"))


# --- in Chromium: the pages at a phone's and a desktop's width -------------------------------------


class LivePhone(Phone):
    """The phone app speaking to the live server over HTTP."""

    def __init__(self, base_url: str, clock):
        super().__init__(None, clock)
        self.base_url = base_url

    def call(self, method: str, path: str, body: dict | None = None):
        raw = json.dumps(body).encode() if body is not None else b""
        headers = signing.sign_request(self.key, method, path, raw, self.device_id,
                                       now=int(self.clock.now().timestamp()))
        return requests.request(method, self.base_url + path, data=raw, timeout=15,
                                headers={**headers, "Content-Type": "application/json"})


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (Debian package chromium)")
def test_the_push_pages_in_chromium(sized_page, live, clock, bob, tmp_path):
    """Set-up, first request, security info, an expired link, a sign-in, no answer, the fatigue limit:
    each fits the width, axe-core finds nothing (shot), and the QR code on the screen decodes
    (zbarimg) to the set-up link the page shows. The page goes on by itself once the phone is added."""
    page, size = sized_page
    page.goto("/sign-in")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/register")
    page.get_by_label("Mobile app (notifications)").check()
    shot(page, "push-choose" + size)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Set up notifications on your phone").wait_for()
    link = page.locator("#enrol-url").get_attribute("href") or ""
    assert link.startswith(live.url + "/app#enrol=")
    qr = tmp_path / "qr.png"
    page.locator("img.app-qr").screenshot(path=str(qr))
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(qr)], capture_output=True, text=True)
    assert decoded.stdout.strip() == link
    shot(page, "push-set-up" + size)
    page.get_by_role("button", name="I've added my phone").click()
    page.get_by_text("We have not heard from your phone yet").wait_for()
    shot(page, "push-not-yet" + size)
    phone = LivePhone(live.url, clock)
    phone.enrol(link, name="Pixel 8")
    # The page notices by itself (app.js polls) and sends the first request.
    page.get_by_role("heading", name="Approve the request on your phone").wait_for()
    number = page.locator(".app-number-match").inner_text().replace("Number to enter:", "").strip()
    shot(page, "push-verify-registering" + size)
    phone.approve(number)
    page.get_by_text("You're set up").wait_for()

    page.goto("/security-info")
    page.get_by_role("heading", name="Mobile app (notifications)").wait_for()
    shot(page, "push-security-info" + size)
    page.get_by_role("link", name="Remove phone app Pixel 8").click()
    page.get_by_role("heading", name="Are you sure you want to remove your phone app?").wait_for()
    shot(page, "push-remove" + size)
    page.goto("/security-info")
    page.get_by_role("button", name="Add a phone app").click()
    page.get_by_role("heading", name="Set up notifications on your phone").wait_for()
    clock.advance(minutes=9)
    page.reload()
    with page.expect_navigation():  # the form posts and comes back: reloading before then races it
        page.get_by_role("button", name="Give me more time").click()  # the change goes on; the link does not
    clock.advance(minutes=2)
    page.reload()
    page.get_by_role("heading", name="Your set-up link has expired").wait_for()
    shot(page, "push-expired" + size)
    page.get_by_role("button", name="Cancel and go back to security info").click()

    # Signing in again: the phone app is the default, so a request goes out by itself.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.goto("/sign-in")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Approve the request on your phone").wait_for()
    shot(page, "push-sign-in" + size)
    clock.advance(seconds=121)  # not answered in time: the page's poll notices
    page.get_by_role("heading", name="Send a new request to your phone").wait_for()
    shot(page, "push-no-response" + size)
    for _ in range(3):  # after the sign-in's, two more: three in 5 minutes; the fourth is refused
        with page.expect_navigation():  # each posts and comes back before the next click
            page.get_by_role("button", name="Send a new request").click()
    page.get_by_text("We have sent 3 requests to your phone").wait_for()
    shot(page, "push-fatigue" + size)
    page.get_by_role("link", name="Sign in another way").click()
    page.get_by_role("heading", name="Sign in another way").wait_for()
    assert page.get_by_role("button", name="Approve a request on my phone (Mobile app: Pixel 8)").count() == 1
    shot(page, "push-other" + size)
