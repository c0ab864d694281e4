"""The phone app (/app) in a phone-sized Chromium.

Two kinds of test:
- against a stand-in device API (Playwright routes /device/v1/** to `FakeDeviceApi`, which checks
  every signature the way PUSH_SPEC says the server does): the app's screens and its signing;
- against the real server end to end: the web app enrolled from the JSON API's link approves a sign-in
  made in a second (desktop) browser on the server's own pages.

Screenshots go to $SCREENSHOT_DIR when set.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from playwright.sync_api import expect

from tests.browser_steps import AxeWatch, assert_accessible
from tests.test_pages_browser import CHROMIUM_ARGS
from tests.helpers import LiveServer
from tests.personas import PASSWORD

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
SHOTS = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else None
NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeDeviceApi:
    """The device API as PUSH_SPEC describes it, answering from memory. Every signed request is
    checked; what is wrong is noted in `problems` (a route handler cannot fail the test itself)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.enrol_status = 201
        self.vapid_public_key: str | None = None  # None: Web Push off, the app polls
        self.removed = False
        self.server_date: str | None = None  # the Date header of a refusal (a phone clock that is wrong)
        self.pending: list[dict[str, Any]] = []
        self.replies: dict[str, tuple[int, dict[str, Any]]] = {}  # "approve"/"deny": a forced answer
        self.key: ec.EllipticCurvePublicKey | None = None
        self.device_id = ""  # set by a successful enrolment...
        self.next_device_id = "dev-1"  # ...to this
        self.calls: list[tuple[str, str, Any, dict[str, str]]] = []  # method, path, body, headers
        self.problems: list[str] = []
        self._nonces: set[str] = set()

    def install(self, context: Any) -> None:
        context.route("**/device/v1/**", self._handle)

    def add_request(self, request_id: str, app: str = "Staff rota", source_ip: str | None = "203.0.113.7",
                    cancelled: bool = False) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        self.pending.insert(0, {"id": request_id, "service": self.service, "app": app, "created_at": now,
                                "expires_at": now, "source_ip": source_ip, "cancelled": cancelled})

    def calls_to(self, suffix: str) -> list[tuple[str, str, Any, dict[str, str]]]:
        return [call for call in self.calls if call[1].endswith(suffix)]

    # --- the handler ---------------------------------------------------------------------------

    def _handle(self, route: Any, request: Any) -> None:
        url = urlparse(request.url)
        path = url.path + (f"?{url.query}" if url.query else "")
        if path == "/device/v1/config":
            return self._answer(route, 200, {"service": self.service, "vapid_public_key": self.vapid_public_key})
        raw = request.post_data_buffer or b""
        headers = request.all_headers()
        body: Any = json.loads(raw) if raw else None
        self.calls.append((request.method, path, body, headers))
        if path == "/device/v1/enrol":
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(body["public_key"]))
            if not self._signed_well(key, request.method, path, raw, headers, ""):
                return self._answer(route, 401, {"error": "invalid_signature"})
            if self.enrol_status != 201:
                return self._answer(route, self.enrol_status, {"error": "enrolment_invalid", "message": "Gone."})
            self.key, self.device_id = key, self.next_device_id
            return self._answer(route, 201, {"device_id": self.device_id, "service": self.service, "username": "bob"})
        if self.key is None or self.removed or not self._signed_well(
                self.key, request.method, path, raw, headers, self.device_id):
            return self._answer(route, 401, {"error": "invalid_signature", "message": "Not signed."},
                                self.server_date)
        if path == "/device/v1/requests" and request.method == "GET":
            return self._answer(route, 200, {"requests": self.pending})
        found = re.fullmatch(r"/device/v1/requests/([^/]+)/(approve|deny)", path)
        if found and request.method == "POST":
            request_id, action = found.groups()
            self.pending = [r for r in self.pending if r["id"] != request_id]
            if action in self.replies:
                return self._answer(route, *self.replies[action])
            if action == "approve":
                return self._answer(route, 200, {"status": "approved"})
            return self._answer(route, 200, {"status": "fraud_reported" if body.get("fraud") else "denied"})
        return self._answer(route, 404, {"error": "not_found"})

    def _signed_well(self, key: ec.EllipticCurvePublicKey, method: str, path: str, raw: bytes,
                     headers: dict[str, str], device_id: str) -> bool:
        nonce = headers.get("x-device-nonce", "")
        timestamp = headers.get("x-device-timestamp", "")
        problems = []
        if headers.get("x-device-id", "") != device_id:
            problems.append(f"X-Device-Id {headers.get('x-device-id')!r}, expected {device_id!r}")
        if not NONCE.fullmatch(nonce) or nonce in self._nonces:
            problems.append(f"nonce {nonce!r} malformed or reused")
        self._nonces.add(nonce)
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > 60:
            problems.append(f"timestamp {timestamp!r}")
        if "cookie" in headers:
            problems.append("a cookie was sent")
        canonical = "\n".join(["MFA-DEVICE-V1", method, path, hashlib.sha256(raw).hexdigest(), timestamp, nonce,
                               device_id]).encode()
        signature = b64url_decode(headers.get("x-device-signature", ""))
        try:
            assert len(signature) == 64, f"signature of {len(signature)} bytes"
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            key.verify(der, canonical, ec.ECDSA(hashes.SHA256()))
        except (AssertionError, InvalidSignature) as exc:
            problems.append(f"signature does not verify: {exc!r}")
        self.problems += [f"{method} {path}: {p}" for p in problems]
        return not problems

    @staticmethod
    def _answer(route: Any, status: int, body: dict[str, Any], date: str | None = None) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body),
                      headers={"Date": date} if date else {})


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone_chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # Phones' sizes and user agents, in Chromium (no WebKit here).
        devices = {name: {k: v for k, v in p.devices[name].items() if k != "default_browser_type"}
                   for name in ("Pixel 7", "iPhone 14")}
        yield browser, devices
        browser.close()


@pytest.fixture
def app_server(app):
    """The app's pages on a real port (the device API is faked per test)."""
    server = LiveServer()
    server.start(app)
    yield server
    server.stop()


@pytest.fixture
def fake_api(app):
    return FakeDeviceApi(app.extensions["mfa"].settings.service_name)


@pytest.fixture
def phone(phone_chromium, app_server, fake_api):
    browser, devices = phone_chromium
    context = browser.new_context(**devices["Pixel 7"], base_url=app_server.url)
    context.route("https://assets.nhs.uk/**", lambda route: route.abort())  # no internet here
    fake_api.install(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not fake_api.problems, "\n".join(fake_api.problems)
    # Refused by the server on purpose (401/410 ...) shows as a console error for the fetch; others are bugs.
    unexpected = [e for e in errors if "Failed to load resource" not in e
                  and "does not support the Push API in incognito" not in e]  # Playwright's contexts
    assert not unexpected, unexpected


def shot(page, name: str) -> None:
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"phone-{name}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    assert_accessible(page, name)


def eventually(page: Any, expression: str, until: Any = bool, seconds: float = 5) -> Any:
    """Evaluate (awaiting a promise) until `until` holds: wait_for_function does not await promises."""
    deadline = time.monotonic() + seconds
    while True:
        value = page.evaluate(expression)
        if until(value) or time.monotonic() > deadline:
            return value
        page.wait_for_timeout(50)


def enrol(page, name: str | None = None) -> None:
    page.goto("/app#enrol=TOKEN-123")
    if name is not None:
        page.get_by_label("Name for this phone").fill(name)
    page.get_by_role("button", name="Add this phone").click()
    page.get_by_role("heading", name="This phone is set up", level=1).wait_for()


# --- against the stand-in API ------------------------------------------------------------------


def test_enrolling_signs_with_the_new_key_and_then_polls_as_the_device(phone, fake_api):
    phone.goto("/app#enrol=TOKEN-123")
    heading = phone.get_by_role("heading", name="Add this phone", level=1)
    expect(heading).to_be_focused()
    name_box = phone.get_by_label("Name for this phone")
    expect(name_box).to_have_value("Android phone")  # guessed from the Pixel's user agent
    assert name_box.get_attribute("maxlength") == "60"
    name_box.fill("Work phone")
    shot(phone, "01-enrol")
    phone.get_by_role("button", name="Add this phone").click()
    phone.get_by_role("heading", name="This phone is set up", level=1).wait_for()
    assert "#" not in phone.url  # the token is gone from the address
    expect(phone.get_by_text("Notifications are off: keep this app open to see requests.")).to_be_visible()
    expect(phone.get_by_text("No sign-in requests. When you sign in, the request appears here.")).to_be_visible()
    shot(phone, "02-enrolled")

    (_, _, body, headers), = fake_api.calls_to("/enrol")
    assert body["token"] == "TOKEN-123" and body["name"] == "Work phone" and body["subscription"] is None
    raw_key = b64url_decode(body["public_key"])
    assert len(raw_key) == 65 and raw_key[0] == 4
    assert "x-device-id" not in headers
    phone.wait_for_function("document.title.length > 0")
    fake_api.calls.clear()
    phone.wait_for_timeout(2500)  # polls every 2 s (the page's own timer: nothing to inject)
    assert len(fake_api.calls_to("/device/v1/requests")) >= 1


def test_the_device_stays_enrolled_after_a_reload(phone, fake_api):
    enrol(phone)
    phone.reload()
    phone.get_by_role("heading", name="Sign-in requests", level=1).wait_for()
    expect(phone.get_by_text("This phone: Android phone · bob")).to_be_visible()


def test_a_used_link_says_so_and_keeps_the_typed_name(phone, fake_api):
    fake_api.enrol_status = 410
    phone.goto("/app#enrol=OLD")
    phone.get_by_label("Name for this phone").fill("My Pixel")
    phone.get_by_role("button", name="Add this phone").click()
    summary = phone.locator(".nhsuk-error-summary")
    expect(summary).to_contain_text(
        "This link has been used or has expired. Ask for a new one on the security info page.")
    expect(summary).to_be_focused()
    assert phone.get_by_label("Name for this phone").input_value() == "My Pixel"
    shot(phone, "03-enrol-expired")


def test_an_empty_name_is_asked_for_before_anything_is_sent(phone, fake_api):
    phone.goto("/app#enrol=TOKEN")
    phone.get_by_label("Name for this phone").fill("  ")
    phone.get_by_role("button", name="Add this phone").click()
    expect(phone.locator("#device-name-error")).to_contain_text("Enter a name for this phone")
    assert not fake_api.calls_to("/enrol")


def test_approving_with_the_number_sends_it_signed(phone, fake_api):
    enrol(phone)
    fake_api.add_request("req-1", app="Staff rota", source_ip="203.0.113.7")
    card = phone.locator(".app-request")
    expect(card.get_by_role("heading", name="Are you trying to sign in?")).to_be_visible()
    expect(card).to_contain_text("Staff rota")
    expect(card).to_contain_text("From: 203.0.113.7")
    box = card.get_by_label("Enter the number shown on the sign-in screen")
    assert box.get_attribute("inputmode") == "numeric" and box.get_attribute("autocomplete") == "one-time-code"
    shot(phone, "04-request")
    card.get_by_role("button", name="Approve").click()  # no number yet: asked for, nothing sent
    expect(card.locator(".nhsuk-error-message")).to_contain_text("Enter the 2-digit number from the sign-in screen")
    assert phone.title().startswith("Error: ")
    expect(box).to_be_focused()
    assert not fake_api.calls_to("/approve")
    shot(phone, "05-request-no-number")
    box.fill("42")
    card.get_by_role("button", name="Approve").click()
    expect(phone.get_by_role("status")).to_have_text("Approved. You can go back to the sign-in screen.")
    (_, path, body, headers), = fake_api.calls_to("/approve")
    assert path == "/device/v1/requests/req-1/approve" and body == {"number": "42"}
    assert headers["x-device-id"] == "dev-1"
    expect(phone.get_by_text("No sign-in requests.", exact=False)).to_be_visible()
    shot(phone, "06-approved")


def test_a_wrong_number_is_explained(phone, fake_api):
    enrol(phone)
    fake_api.add_request("req-2")
    fake_api.replies["approve"] = (422, {"error": "number_mismatch", "message": "Wrong number."})
    card = phone.locator(".app-request")
    card.get_by_label("Enter the number shown on the sign-in screen").fill("11")
    card.get_by_role("button", name="Approve").click()
    expect(phone.get_by_role("status")).to_have_text(
        "That number did not match. The sign-in was denied. If you were signing in, start again.")
    shot(phone, "07-number-mismatch")


def test_an_ended_request_says_so(phone, fake_api):
    enrol(phone)
    fake_api.add_request("req-3")
    fake_api.replies["deny"] = (409, {"error": "not_pending", "message": "Not waiting."})
    phone.locator(".app-request").get_by_role("button", name="Deny").click()
    expect(phone.get_by_role("status")).to_have_text("This request has ended.")


def test_denying_sends_fraud_false(phone, fake_api):
    enrol(phone)
    fake_api.add_request("req-4")
    phone.locator(".app-request").get_by_role("button", name="Deny").click()
    expect(phone.get_by_role("status")).not_to_be_empty()
    (_, _, body, _), = fake_api.calls_to("/req-4/deny")
    assert body == {"fraud": False}


def test_reporting_asks_first_and_going_back_sends_nothing(phone, fake_api):
    enrol(phone)
    fake_api.add_request("req-5")
    card = phone.locator(".app-request")
    card.get_by_role("button", name="This wasn't me").click()
    expect(card).to_contain_text("Report this sign-in?")
    expect(card).to_contain_text("Your account will be blocked until your administrator unlocks it.")
    shot(phone, "08-report-confirm")
    card.get_by_role("button", name="Go back").click()
    expect(card.get_by_role("button", name="This wasn't me")).to_be_focused()
    assert not fake_api.calls_to("/deny")
    card.get_by_role("button", name="This wasn't me").click()
    card.get_by_role("button", name="Report it").click()
    expect(phone.get_by_role("status")).not_to_be_empty()
    (_, _, body, _), = fake_api.calls_to("/req-5/deny")
    assert body == {"fraud": True}
    shot(phone, "09-reported")


def test_a_sign_in_cancelled_on_its_screen_can_only_be_reported_or_denied(phone, fake_api):
    """Whoever pressed Cancel may have the password: the owner still sees the request, to report it."""
    enrol(phone)
    fake_api.add_request("req-9", cancelled=True)
    card = phone.locator(".app-request")
    expect(card).to_contain_text("This sign-in was cancelled on the sign-in screen")
    expect(card.get_by_role("button", name="Approve")).to_be_hidden()
    expect(card.get_by_label("Enter the number shown on the sign-in screen")).to_be_hidden()
    shot(phone, "24-cancelled-request")
    card.get_by_role("button", name="This wasn't me").click()
    card.get_by_role("button", name="Report it").click()
    expect(phone.get_by_role("status")).not_to_be_empty()
    (_, _, body, _), = fake_api.calls_to("/req-9/deny")
    assert body == {"fraud": True}


def test_a_request_named_in_the_address_is_the_one_shown(phone, fake_api):
    enrol(phone)
    fake_api.add_request("older", app="Payroll")
    fake_api.add_request("newer", app="Staff rota")
    expect(phone.locator(".app-request")).to_contain_text("Staff rota")  # the newest first
    expect(phone.locator("#request-others")).to_contain_text("Payroll")
    shot(phone, "10-two-requests")
    phone.goto("/app#request=older")
    expect(phone.locator(".app-request")).to_contain_text("Payroll")
    expect(phone.locator(".app-request h2")).to_be_focused()


def test_a_removed_phone_is_told_and_can_forget(phone, fake_api):
    enrol(phone)
    fake_api.removed = True
    phone.get_by_text("This phone is no longer set up for sign-in. Set it up again from security info.").wait_for()
    shot(phone, "11-removed")
    phone.get_by_role("button", name="Forget this phone").click()
    phone.get_by_role("heading", name="Set up this phone", level=1).wait_for()
    phone.reload()
    phone.get_by_role("heading", name="Set up this phone", level=1).wait_for()  # IndexedDB emptied
    shot(phone, "12-start")


def test_a_wrong_clock_is_told_apart_from_a_removed_phone_and_recovers(phone, fake_api):
    from email.utils import formatdate

    enrol(phone)
    fake_api.removed = True  # refused...
    fake_api.server_date = formatdate(time.time() + 600, usegmt=True)  # ...by a server 10 minutes ahead
    phone.get_by_role("heading", name="This phone's clock is wrong", level=1).wait_for()
    expect(phone.get_by_text("This phone is no longer set up", exact=False)).to_be_hidden()
    shot(phone, "15-clock-wrong")
    fake_api.removed = False  # the clock put right: the next poll goes through
    phone.get_by_role("heading", name="Sign-in requests", level=1).wait_for()


def test_enrolling_again_asks_to_replace_the_account(phone, fake_api):
    enrol(phone)
    phone.goto("/app#enrol=SECOND")
    expect(phone.get_by_text("Replace the account on this phone?")).to_be_visible()
    shot(phone, "13-replace")
    fake_api.next_device_id = "dev-2"
    phone.get_by_role("button", name="Add this phone").click()
    phone.get_by_role("heading", name="This phone is set up", level=1).wait_for()
    phone.wait_for_timeout(300)
    assert fake_api.calls_to("/device/v1/requests")[-1][3]["x-device-id"] == "dev-2"


def test_with_web_push_the_worker_shows_each_request_as_a_notification(phone, fake_api, app_server):
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    fake_api.vapid_public_key = base64.urlsafe_b64encode(point).rstrip(b"=").decode()
    phone.context.grant_permissions(["notifications"])
    enrol(phone)  # headless Chromium has no push service: subscribing fails, which is not fatal
    assert phone.evaluate("navigator.serviceWorker.ready.then(r => r.scope)") == app_server.url + "/app"
    (_, _, body, _), = fake_api.calls_to("/enrol")
    assert body["subscription"] is None or body["subscription"]["endpoint"].startswith("https://")

    cdp = phone.context.new_cdp_session(phone)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    eventually(phone, "1", until=lambda _: bool(registrations))
    registration, = [r for r in registrations if r["scopeURL"] == app_server.url + "/app" and not r["isDeleted"]]
    payload = {"type": "sign_in_request", "request_id": "req-9", "title": f"Sign-in request for {fake_api.service}",
               "service": fake_api.service, "app": "Staff rota", "created_at": "2026-12-05T09:00:00Z"}
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": app_server.url,
                                                   "registrationId": registration["registrationId"],
                                                   "data": json.dumps(payload)})
    shown = eventually(phone, """navigator.serviceWorker.ready
        .then(r => r.getNotifications())
        .then(list => list.length ? list.map(n => [n.title, n.body, n.tag, n.data.request_id]) : null)""")
    title = f"Sign-in request for {fake_api.service}"
    assert shown == [[title, "Staff rota · tap to approve or deny", "req-9", "req-9"]]


def test_on_an_iphone_the_name_is_guessed_and_the_home_screen_explained(phone_chromium, app_server, fake_api):
    browser, devices = phone_chromium
    context = browser.new_context(**devices["iPhone 14"], base_url=app_server.url)
    context.route("https://assets.nhs.uk/**", lambda route: route.abort())  # else "load" waits on DNS
    fake_api.install(context)
    try:
        page = context.new_page()
        page.goto("/app#enrol=TOKEN")
        expect(page.get_by_label("Name for this phone")).to_have_value("iPhone")  # filled once the app has run
        page.get_by_role("button", name="Add this phone").click()
        hint = page.get_by_text("On an iPhone, notifications need the app on your Home Screen", exact=False)
        expect(hint).to_be_visible()
        shot(page, "14-iphone-enrolled")
    finally:
        context.close()
    assert not fake_api.problems, fake_api.problems


# --- set-up by a pasted link (an iPhone's Home Screen app cannot be opened by the link itself) -----

TOKEN = "Jq0vN2xk4bW7sYp1Lr8cZ5dH3fT6gM9aE2uK0oQ4iXw"  # the shape of the server's tokens (token_urlsafe(32))


def paste_form(page: Any) -> Any:
    return page.get_by_role("textbox", name="Paste the set-up link")


@pytest.mark.parametrize("pasted", ["link", "token"])
def test_a_pasted_set_up_link_enrols_with_its_token(phone, fake_api, app_server, pasted):
    phone.goto("/app")
    expect(phone.get_by_role("heading", name="Set up this phone", level=1)).to_be_focused()
    field = paste_form(phone)
    expect(field).to_have_accessible_description("On your computer's security info page, copy the link under "
                                                 "the QR code, send it to this phone, and paste it here.")
    link = f"{app_server.url}/app#enrol={TOKEN}"
    field.fill(f"  {link}\n" if pasted == "link" else TOKEN)  # as pasted: stray spaces are no matter
    if pasted == "link":
        shot(phone, "16-paste-link")
    phone.get_by_role("button", name="Continue").click()
    expect(phone.get_by_role("heading", name="Add this phone", level=1)).to_be_focused()
    assert phone.url == app_server.url + "/app"  # no reload, and the token in no part of the address
    if pasted == "link":
        shot(phone, "19-pasted-add-this-phone")
    phone.get_by_role("link", name="Back").click()  # a link pasted wrong can be put right
    expect(phone.get_by_role("heading", name="Set up this phone", level=1)).to_be_visible()
    assert field.input_value().strip() == (link if pasted == "link" else TOKEN)
    phone.get_by_role("button", name="Continue").click()
    phone.get_by_role("button", name="Add this phone").click()
    phone.get_by_role("heading", name="This phone is set up", level=1).wait_for()
    (_, _, body, _), = fake_api.calls_to("/enrol")
    assert body["token"] == TOKEN
    assert phone.url == app_server.url + "/app"


@pytest.mark.parametrize("typed, message", [
    ("https://evil.example/app#enrol=" + TOKEN, "Enter a set-up link that starts with {origin}/app#enrol="),
    ("{origin}/app", "Enter a set-up link that starts with {origin}/app#enrol="),
    ("{origin}/account#enrol=" + TOKEN, "Enter a set-up link that starts with {origin}/app#enrol="),
    ("{origin}/app#enrol=short", "Enter a set-up link that starts with {origin}/app#enrol="),
    ("   ", "Paste the set-up link from your security info page"),
])
def test_anything_but_this_sites_set_up_link_is_refused_and_kept(phone, fake_api, app_server, typed, message):
    typed, message = typed.format(origin=app_server.url), message.format(origin=app_server.url)
    phone.goto("/app")
    field = paste_form(phone)
    field.fill(typed)
    phone.get_by_role("button", name="Continue").click()
    summary = phone.locator(".nhsuk-error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("There is a problem")
    expect(summary.get_by_role("link", name=message)).to_be_visible()
    expect(phone.locator(".nhsuk-form-group--error .nhsuk-error-message")).to_have_text(f"Error: {message}")
    expect(field).to_have_attribute("aria-invalid", "true")
    assert field.input_value() == typed  # what was typed stays, to be put right
    assert phone.title().startswith("Error: ")
    if typed.startswith("https://evil"):
        shot(phone, "17-paste-link-refused")
    summary.get_by_role("link", name=message).click()
    expect(field).to_be_focused()
    assert phone.url == app_server.url + "/app"  # the summary's link changes no address
    expect(phone.get_by_role("heading", name="Set up this phone", level=1)).to_be_visible()
    assert not fake_api.calls_to("/enrol")


def test_an_iphone_home_screen_app_is_set_up_by_pasting_the_link(phone_chromium, app_server, fake_api):
    """Opened from the Home Screen at /app (the manifest's start_url): no #enrol=, and Safari's storage apart."""
    browser, devices = phone_chromium
    context = browser.new_context(**devices["iPhone 14"], base_url=app_server.url)
    context.route("https://assets.nhs.uk/**", lambda route: route.abort())
    fake_api.install(context)
    try:
        page = context.new_page()
        page.goto("/app")
        paste_form(page).fill(f"{app_server.url}/app#enrol={TOKEN}")
        shot(page, "23-iphone-paste-link")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_label("Name for this phone")).to_have_value("iPhone")  # filled once the app has run
        page.get_by_role("button", name="Add this phone").click()
        page.get_by_role("heading", name="This phone is set up", level=1).wait_for()
    finally:
        context.close()
    (_, _, body, _), = fake_api.calls_to("/enrol")
    assert body["token"] == TOKEN and body["name"] == "iPhone"
    assert not fake_api.problems, fake_api.problems


def tab_to(page: Any, target: Any, most: int = 10) -> None:
    """Press Tab until `target` has the focus (a person on a keyboard)."""
    for _ in range(most):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    expect(target).to_be_focused()


def test_the_paste_form_works_by_keyboard_alone(phone, fake_api, app_server):
    phone.goto("/app")
    expect(phone.get_by_role("heading", name="Set up this phone", level=1)).to_be_focused()
    field = paste_form(phone)
    tab_to(phone, field)
    phone.keyboard.press("Enter")  # nothing typed yet
    summary = phone.locator(".nhsuk-error-summary")
    expect(summary).to_be_focused()
    tab_to(phone, summary.get_by_role("link"))
    phone.keyboard.press("Enter")
    expect(field).to_be_focused()
    phone.keyboard.type(f"{app_server.url}/app#enrol={TOKEN}")
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("heading", name="Add this phone", level=1)).to_be_focused()
    tab_to(phone, phone.get_by_label("Name for this phone"))
    phone.keyboard.press("Enter")
    phone.get_by_role("heading", name="This phone is set up", level=1).wait_for()
    (_, _, body, _), = fake_api.calls_to("/enrol")
    assert body["token"] == TOKEN

    # Set up again, and Back out of it, by keyboard too.
    again = phone.get_by_role("button", name="Set up again with a new link")
    tab_to(phone, again)
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("heading", name="Set up this phone again", level=1)).to_be_focused()
    phone.keyboard.press("Shift+Tab")
    expect(phone.get_by_role("link", name="Back")).to_be_focused()
    phone.keyboard.press("Enter")
    expect(phone.get_by_role("heading", name="Sign-in requests", level=1)).to_be_focused()


def test_an_enrolled_phone_is_set_up_again_with_a_new_link(phone, fake_api, app_server):
    enrol(phone)
    again = phone.get_by_role("button", name="Set up again with a new link")
    expect(again).to_be_visible()
    again.click()
    expect(phone.get_by_role("heading", name="Set up this phone again", level=1)).to_be_focused()
    shot(phone, "18-set-up-again")
    fake_api.calls.clear()
    phone.wait_for_timeout(2500)  # a poll's worth: the requests screen is gone, and its polling with it
    assert not fake_api.calls_to("/device/v1/requests")
    paste_form(phone).fill(f"{app_server.url}/app#enrol={TOKEN}")
    phone.get_by_role("button", name="Continue").click()
    expect(phone.get_by_text("Replace the account on this phone?")).to_be_visible()
    fake_api.next_device_id = "dev-2"
    phone.get_by_role("button", name="Add this phone").click()
    phone.get_by_role("heading", name="This phone is set up", level=1).wait_for()
    (_, _, body, _), = fake_api.calls_to("/enrol")
    assert body["token"] == TOKEN
    expect(phone.get_by_text("This phone: Android phone · bob")).to_be_visible()
    phone.wait_for_timeout(300)
    assert fake_api.calls_to("/device/v1/requests")[-1][3]["x-device-id"] == "dev-2"


# --- against the real server (the device API in devices/views.py) -------------------------------


DESKTOP = {"viewport": {"width": 1024, "height": 800}}


def desktop_sign_in(page: Any, username: str) -> None:
    """The password step on the server's own sign-in page."""
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_end_to_end_the_web_app_enrols_and_approves_a_sign_in_on_the_pages(phone_chromium, live, bob, clock):
    """The issue's end-to-end test: the web app enrols from the enrolment link and, in a second context,
    a sign-in's number typed into the web app approves it and the sign-in page moves on by itself.

    Context A is bob's phone (Pixel 7): set up from the link the JSON API gives a person who must register,
    and proven by approving that registration's first request. Context B is a desktop browser on the
    sign-in pages. TODO: a wrong number, "This wasn't me", the phone removed from security info."""
    from models import PushDevice
    from tests.conftest import run_in
    from tests.helpers import response_json, start_sign_in

    browser, devices = phone_chromium
    phone_context = browser.new_context(**devices["Pixel 7"], base_url=live.url)
    desktop_context = browser.new_context(**DESKTOP, base_url=live.url)
    axe = AxeWatch()  # every page the desktop loads: sign-in, verify, account
    axe.watch(desktop_context)
    phone, desktop = phone_context.new_page(), desktop_context.new_page()
    for context, page in ((phone_context, phone), (desktop_context, desktop)):
        context.route("https://assets.nhs.uk/**", lambda route: route.abort())  # no internet here
        page.set_default_timeout(10_000)
        # The server's clock is the tests' fixed one: the phone's signatures must agree with it, and the
        # pages' timers (the phone's polling, the sign-in page's) run on from it in real time.
        page.clock.install(time=clock.now())
    try:
        # A: set up from the link, and the registration's first request approved.
        auth = start_sign_in(live.api, "bob", expect="registration_required")
        registered = live.api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"})
        assert registered.status_code == 201, response_json(registered)
        enrolment_url = response_json(registered)["enrolment_url"]
        assert enrolment_url.startswith(live.url + "/app#enrol=")
        phone.goto(enrolment_url)
        phone.get_by_label("Name for this phone").fill("Bob's Pixel")
        phone.get_by_role("button", name="Add this phone").click()
        phone.get_by_role("heading", name="This phone is set up", level=1).wait_for()
        device_row = run_in(live.app, lambda db, svc: db.query(PushDevice).one())
        assert device_row.name == "Bob's Pixel"
        challenge = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": device_row.method_id})
        assert challenge.status_code == 201, response_json(challenge)
        approve_on_phone(phone, response_json(challenge)["number_match"])
        assert response_json(live.api.get(f"/authentications/{auth['id']}"))["status"] == "approved"
        shot(phone, "20-live-approved")

        # B: a sign-in on the pages waits on the phone, showing the number to type there.
        desktop_sign_in(desktop, "bob")
        expect(desktop).to_have_url(re.compile(r"/verify$"))
        expect(desktop.get_by_role("heading", name="Approve the request on your phone", level=1)).to_be_visible()
        shown = desktop.locator(".app-number-match")
        expect(shown).to_have_text(re.compile(r"\b[1-8][0-9]$"))
        number = shown.inner_text().strip()[-2:]  # after the visually hidden "Number to enter: "
        assert_accessible(desktop, "verify-push")
        if SHOTS:
            desktop.screenshot(path=str(SHOTS / "phone-21-live-verify-desktop.png"), full_page=True)

        # A (which polls) shows the request: the number typed, approved...
        approve_on_phone(phone, number, app=f"{live.app.extensions['mfa'].settings.service_name} sign-in page")
        # ...and B moves on by itself (the test neither reloads nor clicks), signed in.
        expect(desktop).to_have_url(re.compile(r"/account$"), timeout=15_000)
        expect(desktop.get_by_role("heading", name="You're signed in", level=1)).to_be_visible()
        shot(phone, "22-live-second-approved")
        axe.assert_clean()
        assert axe.checked >= 3, axe.checked
    finally:
        phone_context.close()
        desktop_context.close()


def approve_on_phone(phone: Any, number: str, app: str | None = None) -> None:
    """The web app's request card: the number typed, Approve, and the app says it is done."""
    card = phone.locator(".app-request")
    card.get_by_role("heading", name="Are you trying to sign in?").wait_for()
    if app is not None:
        expect(card).to_contain_text(app)
    card.get_by_label("Enter the number shown on the sign-in screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    expect(phone.get_by_role("status")).to_have_text("Approved. You can go back to the sign-in screen.")
