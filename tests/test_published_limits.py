"""Every limit past the edge is enforced at the number GET /api/v1/limits publishes (issue 14).

tests/test_rate_limits.py drives the seven edge limits (Flask-Limiter) from their published
numbers; this file drives the others: each test starts an app whose setting makes the limit small,
reads `limit` and `window_seconds` from GET /api/v1/limits (never from the catalogue), then shows
through the JSON API (the domain only where the API cannot reach: a call's ending, the audit) that
exactly `limit` actions pass, the next gets the documented effect, and (where cheap) that it works
again once the published window has passed on the injected clock. Texts and calls go to
tests/fake_telephony.py, so "nothing sent" is asserted on what the provider was asked to send.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app import create_app
from authenticator import signing
from mfa import accounts, api_keys, app_passwords, change_notices, limits
from models import AuditEvent, User
from tests.conftest import PASSWORD, run_in
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import ApiClient, add_phone, enrol_app, pyotp_code, start_sign_in
from tests.test_rate_limits import EDGE_LIMITS
from tests.test_toll_fraud import challenge, press_nothing, refused_with, until_midnight

UK_MOBILE = "+447400123456"
RESEND = 30  # the default resend spacing (LIMIT_RESEND_WAIT_SECONDS), kept between sends below


class Started:
    """An app started with some limit settings, its API, its fake provider and its clock."""

    def __init__(self, app: Any, clock: Any):
        self.app, self.clock = app, clock
        self.runtime = app.extensions["mfa"]
        self.fake = FakeTelephony()
        use_fake(self.runtime, self.fake)
        self.api = ApiClient(app.test_client(), self.run(lambda db, svc: api_keys.create(db, svc, "limits")))

    def run(self, use: Any) -> Any:
        return run_in(self.app, use)

    def published(self, name: str) -> tuple[int, int]:
        """(limit, window_seconds) as GET /api/v1/limits publishes them."""
        response = self.api.get("/limits")
        assert response.status_code == 200, response.json
        [entry] = [e for e in response.json["limits"] if e["name"] == name]
        return entry["limit"], entry["window_seconds"]

    def person(self, username: str, number: str | None = None) -> dict[str, str]:
        """An administrator in England; with `number`, a verified mobile: {"sms": id, "voice": id}."""
        user = self.run(lambda db, svc: accounts.create_user(db, svc, username, PASSWORD, role="admin",
                                                             region="england"))
        if number is None:
            return {"user_id": user.id}
        sms_id, voice_id = add_phone(self.run, user, number, types=("sms", "voice"))
        return {"user_id": user.id, "sms": sms_id, "voice": voice_id}

    def sends(self) -> int:
        return len(self.fake.texts) + len(self.fake.calls)

    def audits(self, event: str) -> int:
        return self.run(lambda db, svc: db.scalar(select(func.count()).select_from(AuditEvent)
                                                  .where(AuditEvent.event == event))) or 0


@pytest.fixture
def start(app_config, clock) -> Iterator[Any]:
    started: list[Started] = []

    def _start(**settings: str) -> Started:
        app = create_app({**app_config, **settings})
        app.config["TESTING"] = True
        started.append(Started(app, clock))
        return started[-1]

    yield _start
    change_notices.wait_for_sends()
    for one in started:
        one.runtime.engine.dispose()


def assert_429(response, retry_after: float | None = None, says: str | None = None) -> dict:
    body = refused_with(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1 and body["retry_after"] > 0
    if retry_after is not None:
        assert body["retry_after"] == retry_after, body
    if says is not None:
        assert says in body["message"], body
    return body


# --- texts and calls ------------------------------------------------------------------------------


def test_sends_per_sign_in(start, clock):
    s = start(LIMIT_SENDS_PER_SIGN_IN="3")
    most, window = s.published(limits.SENDS_PER_SIGN_IN)
    assert (most, window) == (3, 600)
    phone = s.person("pat", UK_MOBILE)
    auth = start_sign_in(s.api, "pat", expect="mfa_required")
    for n in range(most):
        sent = s.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": phone["sms"]})
        assert sent.status_code == 201, (n, sent.json)
        clock.advance(RESEND)
    refused = s.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": phone["voice"]})
    assert_429(refused, says=f"No more than {most} codes or calls per sign-in")
    assert s.sends() == most
    assert challenge(s.api, "pat", phone["sms"]).status_code == 201  # a new sign-in has its own count


def test_resend_wait(start, clock):
    s = start(LIMIT_RESEND_WAIT_SECONDS="45")  # the setting is the window
    most, window = s.published(limits.RESEND_WAIT)
    assert (most, window) == (1, 45)
    phone = s.person("pat", UK_MOBILE)
    auth = start_sign_in(s.api, "pat", expect="mfa_required")
    again = f"/authentications/{auth['id']}/challenges"
    assert s.api.post(again, {"method_id": phone["sms"]}).status_code == 201
    assert_429(s.api.post(again, {"method_id": phone["sms"]}), retry_after=window, says=f"Wait {window} seconds")
    clock.advance(window - 1)
    assert_429(s.api.post(again, {"method_id": phone["voice"]}), retry_after=1, says="Wait 1 second ")
    clock.advance(1)
    assert s.api.post(again, {"method_id": phone["sms"]}).status_code == 201
    assert s.sends() == 2


def test_sends_per_person(start, clock):
    s = start(LIMIT_SENDS_PER_PERSON="3")
    most, window = s.published(limits.SENDS_PER_PERSON)
    assert (most, window) == (3, 3600)
    phone = s.person("pat", UK_MOBILE)
    other = s.person("sam", "+447400654321")
    first = clock.now()
    for n in range(most):
        assert challenge(s.api, "pat", phone[("sms", "voice")[n % 2]]).status_code == 201
        clock.advance(RESEND + 1)
    refused_at = clock.now()
    body = assert_429(challenge(s.api, "pat", phone["sms"]), says="Too many texts and calls in the last hour")
    assert body["retry_after"] <= window  # (the whole window: more than needed, never less)
    assert challenge(s.api, "sam", other["sms"]).status_code == 201  # another person
    assert s.sends() == most + 1
    clock.set(first + timedelta(seconds=window, microseconds=1))  # the first send has left the window
    assert challenge(s.api, "pat", phone["sms"]).status_code == 201
    clock.set(refused_at + timedelta(seconds=body["retry_after"]))  # the refusal's Retry-After was enough
    assert challenge(s.api, "pat", phone["voice"]).status_code == 201


def test_sends_per_number(start, clock):
    s = start(LIMIT_SENDS_PER_NUMBER="3", LIMIT_SENDS_PER_PERSON="100")
    most, window = s.published(limits.SENDS_PER_NUMBER)
    assert (most, window) == (3, 3600)
    shared = [s.person(name, UK_MOBILE) for name in ("pat", "sam")]  # one number, two people
    first = clock.now()
    for n in range(most):
        assert challenge(s.api, ("pat", "sam")[n % 2], shared[n % 2]["sms"]).status_code == 201
        clock.advance(RESEND + 1)
    body = assert_429(challenge(s.api, "sam", shared[1]["voice"]), says="Too many texts and calls in the last hour")
    assert body["retry_after"] <= window
    assert s.sends() == most
    clock.set(first + timedelta(seconds=window, microseconds=1))  # the first send has left the window
    assert challenge(s.api, "sam", shared[1]["sms"]).status_code == 201


def test_sends_per_number_day(start, clock):
    s = start(TELEPHONY_NUMBER_DAILY_CAP="3")
    most, window = s.published(limits.SENDS_PER_NUMBER_DAY)
    assert (most, window) == (3, 86400)
    phone = s.person("pat", UK_MOBILE)
    first = clock.now()
    for n in range(most):
        assert challenge(s.api, "pat", phone[("sms", "voice")[n % 2]]).status_code == 201
        clock.advance(hours=2)  # past the hourly caps
    assert_429(challenge(s.api, "pat", phone["sms"]), retry_after=(first + timedelta(seconds=window)
                                                                     - clock.now()).total_seconds(),
               says="Too many texts and calls to this number today")
    assert s.sends() == most
    clock.set(first + timedelta(seconds=window))
    assert challenge(s.api, "pat", phone["sms"]).status_code == 201


def test_unanswered_calls_per_number(start, clock):
    s = start(LIMIT_UNANSWERED_CALLS="2")
    most, window = s.published(limits.UNANSWERED_CALLS_PER_NUMBER)
    assert (most, window) == (2, 86400)
    phone = s.person("pat", UK_MOBILE)
    first = clock.now()
    for _ in range(most):
        assert challenge(s.api, "pat", phone["voice"]).status_code == 201
        press_nothing(s.run, phone["voice"], "no-answer")  # Twilio's status callback, in the domain
        clock.advance(minutes=1)
    assert_429(challenge(s.api, "pat", phone["voice"]), retry_after=(first + timedelta(seconds=window)
                                                                       - clock.now()).total_seconds(),
               says=f"Nobody answered the last {most} calls")
    assert len(s.fake.calls) == most
    assert challenge(s.api, "pat", phone["sms"]).status_code == 201  # texts still go
    clock.set(first + timedelta(seconds=window))
    assert challenge(s.api, "pat", phone["voice"]).status_code == 201


def test_new_numbers_per_range(start, clock):
    s = start(LIMIT_NEW_NUMBERS_PER_RANGE="2")
    most, window = s.published(limits.NEW_NUMBERS_PER_RANGE)
    assert (most, window) == (2, 3600)
    people = [s.person(f"p{i}", f"+447400123{i:03d}") for i in range(most + 1)]  # one range: +447400123xxx
    other_range = s.person("other", "+447400987001")
    first = clock.now()
    for i in range(most):
        assert challenge(s.api, f"p{i}", people[i]["sms"]).status_code == 201
        clock.advance(minutes=1)
    assert_429(challenge(s.api, f"p{most}", people[most]["sms"]),
               retry_after=(first + timedelta(seconds=window) - clock.now()).total_seconds(),
               says="Too many new numbers like this one")
    assert challenge(s.api, "p0", people[0]["voice"]).status_code == 201  # known in the hour: not new
    assert challenge(s.api, "other", other_range["sms"]).status_code == 201
    assert s.sends() == most + 2
    clock.set(first + timedelta(seconds=window, minutes=1))  # p0's text and call left it, p1's not
    assert challenge(s.api, f"p{most}", people[most]["sms"]).status_code == 201


def test_telephony_daily_budget(start, clock):
    s = start(TELEPHONY_DAILY_BUDGET="2")
    most, window = s.published(limits.TELEPHONY_BUDGET)
    assert (most, window) == (2, 86400)
    bob_id = s.person("bob")["user_id"]
    secret = enrol_app(s.api, clock, "bob")
    sms_id, voice_id = add_phone(s.run, s.run(lambda db, svc: db.get(User, bob_id)), UK_MOBILE)
    phone = {"sms": sms_id, "voice": voice_id}
    for n in range(most):
        assert challenge(s.api, "bob", phone[("sms", "voice")[n % 2]]).status_code == 201
        clock.advance(minutes=1)
    assert_429(challenge(s.api, "bob", phone["sms"]), retry_after=until_midnight(clock), says="paused for today")
    assert s.sends() == most
    # The documented effect, telephony_off: only app methods are offered, and the app still works.
    auth = start_sign_in(s.api, "bob", expect="mfa_required")
    assert [m["type"] for m in auth["methods"]] == ["totp"]
    done = s.api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert done.json["status"] == "approved"
    clock.advance(seconds=until_midnight(clock))  # a new day (UTC)
    assert challenge(s.api, "bob", phone["sms"]).status_code == 201


# --- codes and passwords ----------------------------------------------------------------------------


def test_code_attempts_per_sign_in(start, clock):
    s = start(LIMIT_CODE_ATTEMPTS="3")
    most, window = s.published(limits.CODE_ATTEMPTS)
    assert (most, window) == (3, 600)
    s.person("bob")
    secret = enrol_app(s.api, clock, "bob")
    auth = start_sign_in(s.api, "bob", expect="mfa_required")
    checks = f"/authentications/{auth['id']}/checks"
    wrong = f"{(int(pyotp_code(secret, clock.now())) + 500_000) % 1_000_000:06d}"
    assert s.api.get(f"/authentications/{auth['id']}").json["attempts_left"] == most
    for n in range(most - 1):
        answer = s.api.post(checks, {"code": wrong})
        assert (answer.status_code, answer.json["error"]) == (400, "invalid_code"), answer.json
        assert s.api.get(f"/authentications/{auth['id']}").json["attempts_left"] == most - n - 1
    refused_with(s.api.post(checks, {"code": wrong}), 423, "too_many_attempts")  # the limit-th wrong code
    assert s.api.post(checks, {"code": pyotp_code(secret, clock.now())}).status_code != 200  # the sign-in ended
    assert s.api.get(f"/authentications/{auth['id']}").json["status"] == "denied"
    # A new sign-in has its own count.
    auth = start_sign_in(s.api, "bob", expect="mfa_required")
    answer = s.api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert answer.json["status"] == "approved"


def test_lockout_threshold(start, clock):
    s = start(LOCKOUT_THRESHOLD="3")
    most, window = s.published(limits.LOCKOUT_THRESHOLD)
    assert (most, window) == (3, 0)
    s.person("pat")
    s.person("sam")
    wrong = {"username": "pat", "password": "not the password"}
    answers = [s.api.post("/authentications", wrong) for _ in range(most)]
    assert [a.status_code for a in answers[:-1]] == [401] * (most - 1)
    refused_with(answers[-1], 423, "locked")  # the limit-th failure locks
    refused_with(s.api.post("/authentications", {"username": "pat", "password": PASSWORD}), 423, "locked")
    assert s.api.post("/authentications", {"username": "sam", "password": PASSWORD}).status_code == 201
    assert s.audits("account_locked") == 1


def test_app_password_lockout_threshold(start, clock):
    s = start(APP_PASSWORD_LOCKOUT_THRESHOLD="3")
    most, window = s.published(limits.APP_PASSWORD_LOCKOUT_THRESHOLD)
    assert (most, window) == (3, 0)
    user_id = s.person("pat")["user_id"]
    _, right = s.run(lambda db, svc: app_passwords.create(db, svc, db.get(User, user_id), "Mail"))
    wrong = {"username": "pat", "app_password": "abcd efgh ijkl mnop"}
    for _ in range(most - 1):
        assert s.api.post("/app-passwords/verify", wrong).status_code == 401
    assert s.audits("app_passwords_locked") == 0
    assert s.api.post("/app-passwords/verify", wrong).status_code == 401
    assert s.audits("app_passwords_locked") == 1  # the documented effect: audited...
    assert s.run(lambda db, svc: db.get(User, user_id).app_password_locked_until) is not None
    answer = s.api.post("/app-passwords/verify", {"username": "pat", "app_password": right})
    assert (answer.status_code, answer.json) == (200, {"valid": True})  # ...and a right one still works
    assert s.api.post("/authentications", {"username": "pat", "password": PASSWORD}).status_code == 201


# --- the phone app (push) ---------------------------------------------------------------------------


class Phone:
    """A push device set up through the API and the device API (the test client), its first push approved."""

    def __init__(self, s: Started, clock: Any, username: str = "bob"):
        self.s, self.clock, self.client = s, clock, s.app.test_client()
        auth = start_sign_in(s.api, username, expect="registration_required")
        registered = s.api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"})
        assert registered.status_code == 201, registered.json
        self.method_id = registered.json["method_id"]
        self.key = signing.new_private_key()
        enrolled = self._signed("POST", "/device/v1/enrol", {
            "token": registered.json["enrolment_url"].split("#enrol=")[1],
            "public_key": signing.public_key_b64(self.key), "name": "Pixel"}, "")
        assert enrolled.status_code == 201, enrolled.json
        self.device_id = enrolled.json["device_id"]
        number = self.push(auth).json["number_match"]
        answer = self._signed("POST", f"/device/v1/requests/{self.waiting()}/approve", {"number": number})
        assert answer.status_code == 200, answer.json

    def _signed(self, method: str, path: str, body: dict | None, device_id: str | None = None):
        raw = json.dumps(body).encode() if body is not None else b""
        headers = signing.sign_request(self.key, method, path, raw, self.device_id if device_id is None else device_id,
                                       now=int(self.clock.now().timestamp()))
        return self.client.open(path, method=method, data=raw, headers={**headers, "Content-Type": "application/json"})

    def push(self, auth: dict | None = None):
        """Ask for a push on a new sign-in (or `auth`)."""
        auth = auth or start_sign_in(self.s.api, "bob", expect="mfa_required")
        return self.s.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": self.method_id})

    def waiting(self) -> str:
        found = self._signed("GET", "/device/v1/requests", None).json["requests"]
        return found[-1]["id"]

    def deny(self) -> None:
        answer = self._signed("POST", f"/device/v1/requests/{self.waiting()}/deny", {})
        assert answer.status_code == 200 and answer.json == {"status": "denied"}, answer.json


def test_push_requests(start, clock):
    s = start(LIMIT_PUSH_REQUESTS="2")
    most, window = s.published(limits.PUSH_REQUESTS)
    assert (most, window) == (2, 300)
    s.person("bob")
    phone = Phone(s, clock)
    clock.advance(window)  # the set-up's push has left the window
    first = clock.now()
    for _ in range(most):
        assert phone.push().status_code == 201
        clock.advance(10)
    assert_429(phone.push(), retry_after=(first + timedelta(seconds=window) - clock.now()).total_seconds(),
               says=f"We have sent {most} requests to your phone")
    clock.set(first + timedelta(seconds=window))
    assert phone.push().status_code == 201


def test_push_requests_per_hour(start, clock):
    s = start(LIMIT_PUSH_REQUESTS_PER_HOUR="3", LIMIT_PUSH_REQUESTS="100")
    most, window = s.published(limits.PUSH_REQUESTS_PER_HOUR)
    assert (most, window) == (3, 3600)
    s.person("bob")
    phone = Phone(s, clock)
    clock.advance(window)
    first = clock.now()
    for _ in range(most):
        assert phone.push().status_code == 201
        clock.advance(60)
    assert_429(phone.push(), retry_after=(first + timedelta(seconds=window) - clock.now()).total_seconds(),
               says="requests to your phone in the last hour")
    clock.set(first + timedelta(seconds=window))
    assert phone.push().status_code == 201


def test_push_denials_before_pause(start, clock):
    s = start(LIMIT_PUSH_DENIALS="3", LIMIT_PUSH_REQUESTS="100")
    most, window = s.published(limits.PUSH_DENIALS)
    assert (most, window) == (3, 900)
    s.person("bob")
    phone = Phone(s, clock)
    clock.advance(1)  # the set-up's approval comes before the denials
    for n in range(most):
        assert phone.push().status_code == 201, n  # fewer than `most` denials in a row: not paused
        phone.deny()
        clock.advance(10)
    assert s.audits("push_paused") == 1
    assert_429(phone.push(), retry_after=window - 10, says=f"because the last {most} were denied")
    clock.advance(window - 10)
    assert phone.push().status_code == 201


# --- change notices -----------------------------------------------------------------------------------


def test_change_notices_per_person(start, clock):
    s = start(LIMIT_CHANGE_NOTICES="2")
    most, window = s.published(limits.NOTICES_PER_PERSON)
    assert (most, window) == (2, 3600)
    phone = s.person("pat", UK_MOBILE)

    def approved_sign_in() -> str:
        auth = start_sign_in(s.api, "pat", expect="mfa_required")
        assert s.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": phone["sms"]}).status_code == 201
        code = s.fake.texts[-1][1]
        assert s.api.post(f"/authentications/{auth['id']}/checks", {"code": code}).json["status"] == "approved"
        return auth["id"]

    def notices() -> list[tuple[str, str]]:
        assert change_notices.wait_for_sends()
        return list(s.fake.notices)

    auth_id = approved_sign_in()
    regenerate = f"/authentications/{auth_id}/recovery-codes"
    assert s.api.post(regenerate, {}).status_code == 201  # the first set: nothing to tell
    assert notices() == []
    first = clock.now()
    for _ in range(most + 2):
        assert s.api.post(regenerate, {}).status_code == 201
        clock.advance(1)
    assert notices() == [(UK_MOBILE, change_notices.RECOVERY_CODES_REGENERATED)] * most  # the rest not texted
    outcomes = s.run(lambda db, svc: list(db.scalars(select(AuditEvent.outcome).where(
        AuditEvent.event == change_notices.EVENT).order_by(AuditEvent.id))))
    assert outcomes[-(most + 2):] == ["sent"] * most + ["none"] * 2  # audited, not texted
    clock.set(first + timedelta(seconds=window, microseconds=1))
    auth_id = approved_sign_in()
    assert s.api.post(f"/authentications/{auth_id}/recovery-codes", {}).status_code == 201
    assert len(notices()) == most + 1


# --- every limit has a test that drives it from its published number -------------------------------

DRIVEN_HERE = {
    limits.SENDS_PER_SIGN_IN, limits.RESEND_WAIT, limits.SENDS_PER_PERSON, limits.SENDS_PER_NUMBER,
    limits.SENDS_PER_NUMBER_DAY, limits.UNANSWERED_CALLS_PER_NUMBER, limits.NEW_NUMBERS_PER_RANGE,
    limits.TELEPHONY_BUDGET, limits.CODE_ATTEMPTS, limits.LOCKOUT_THRESHOLD, limits.APP_PASSWORD_LOCKOUT_THRESHOLD,
    limits.PUSH_REQUESTS, limits.PUSH_REQUESTS_PER_HOUR, limits.PUSH_DENIALS, limits.NOTICES_PER_PERSON,
}


def test_every_limit_in_the_catalogue_is_driven_from_its_published_number():
    catalogue = {limit.name for limit in limits.CATALOGUE}
    assert DRIVEN_HERE.isdisjoint(EDGE_LIMITS)
    assert catalogue == DRIVEN_HERE | set(EDGE_LIMITS), "a limit without a test driving it from GET /api/v1/limits"
    for name in DRIVEN_HERE:  # each has its test here, named after it
        assert f"test_{name}" in globals(), name
