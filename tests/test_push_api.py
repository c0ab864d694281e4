"""Push approvals end to end over real HTTP: the JSON API, the device API (PUSH_SPEC) and the reference
authenticator (authenticator/), with Web Push through real pywebpush to a loopback push endpoint.

The live server runs on the test's FixedClock, so devices sign with that clock's time (Device `now`).
The twenty-way races run on both databases; only PostgreSQL makes them truly concurrent.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from authenticator import signing
from authenticator.client import Device, Refused
from authenticator.push_endpoint import LocalPushEndpoint
from mfa import push_enrolment, security_info
from mfa.clock import FixedClock
from mfa.webpush_keys import generate_vapid_private_key, vapid_public_key
from models import AuditEvent, Challenge, PushDevice, User
from tests import personas
from tests.conftest import PASSWORD, run_in
from tests.helpers import add_phone, run_together, start_sign_in, state

ROOT = Path(__file__).resolve().parents[1]
WAYS = 20
TTL = timedelta(minutes=2)
WINDOW = timedelta(minutes=5)


# --- steps ----------------------------------------------------------------------------------------


def fixed_time(clock: FixedClock) -> Callable[[], float]:
    return lambda: clock.now().timestamp()


def challenge(live: Any, auth: dict, method_id: str) -> requests.Response:
    return live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id})


def started(live: Any, auth: dict, method_id: str) -> str:
    """Start a push challenge; the number the sign-in screen shows."""
    response = challenge(live, auth, method_id)
    assert response.status_code == 201, response.text
    return response.json()["number_match"]


def enrol_phone(live: Any, clock: FixedClock, tmp_path: Path, username: str = "bob",
                subscription: dict | None = None) -> tuple[Device, dict, str]:
    """A first-registration sign-in, its push set-up link opened by the reference authenticator:
    (device, the sign-in, the push method's id). The method is not verified yet."""
    auth = start_sign_in(live.api, username, expect="registration_required")
    registered = live.api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"})
    assert registered.status_code == 201, registered.text
    device = Device.enrol(registered.json()["enrolment_url"], "Pixel", tmp_path / f"{username}.json",
                          subscription, now=fixed_time(clock))
    return device, auth, registered.json()["method_id"]


def registered_phone(live: Any, clock: FixedClock, tmp_path: Path, username: str = "bob",
                     subscription: dict | None = None) -> tuple[Device, str]:
    """A person's verified push method (first push approved); its request left the fatigue window."""
    device, auth, method_id = enrol_phone(live, clock, tmp_path, username, subscription)
    number = started(live, auth, method_id)
    [request] = device.pending()
    assert device.approve(request["id"], number) == {"status": "approved"}
    clock.advance(WINDOW.total_seconds())
    return device, method_id


def waiting(live: Any, device: Device, method_id: str, username: str = "bob") -> tuple[dict, str, str]:
    """A new sign-in with a push request waiting on the device: (sign-in, request id, number)."""
    auth = start_sign_in(live.api, username, expect="mfa_required")
    number = started(live, auth, method_id)
    [request] = device.pending()
    return auth, request["id"], number


def approve_path(request_id: str) -> str:
    return f"/device/v1/requests/{request_id}/approve"


def number_body(number: str) -> bytes:
    return json.dumps({"number": number}).encode()


def signed(device: Device, clock: FixedClock, method: str, path: str, body: bytes, **kwargs: Any) -> dict[str, str]:
    return signing.sign_request(device.private_key, method, path, body, device.device_id,
                                now=int(clock.now().timestamp()), **kwargs)


def send(live: Any, method: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.request(method, live.url + path, data=body or None, timeout=15,
                            headers={**headers, "Content-Type": "application/json"})


def refusal(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(Refused) as refused:
        call()
    return refused.value.status, refused.value.code


def audits(live: Any, event: str, outcome: str | None = None) -> list[AuditEvent]:
    def find(db, svc):
        query = select(AuditEvent).where(AuditEvent.event == event)
        if outcome is not None:
            query = query.where(AuditEvent.outcome == outcome)
        return list(db.scalars(query).all())

    return run_in(live.app, find)


def device_row(live: Any, device_id: str) -> PushDevice | None:
    return run_in(live.app, lambda db, svc: db.get(PushDevice, device_id))


def subscription_kept(live: Any, device_id: str) -> bool:
    row = device_row(live, device_id)
    assert row is not None
    return row.subscription_encrypted is not None


def service_name(live: Any) -> str:
    return live.app.extensions["mfa"].services.service_name


# --- set-up and approval ----------------------------------------------------------------------------


def test_a_phone_set_up_from_the_link_approves_its_first_push_and_becomes_a_method(live, bob, clock, tmp_path):
    auth = start_sign_in(live.api, "bob", expect="registration_required")
    registered = live.api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"})
    assert registered.status_code == 201, registered.text
    url, method_id = registered.json()["enrolment_url"], registered.json()["method_id"]
    assert url.startswith(live.url + "/app#enrol=")

    before = challenge(live, auth, method_id)
    assert (before.status_code, before.json()["error"]) == (409, "device_not_enrolled")

    device = Device.enrol(url, "Pixel", tmp_path / "state.json", now=fixed_time(clock))
    assert (device.service, device.username) == (service_name(live), "bob")
    response = challenge(live, auth, method_id)
    assert response.status_code == 201, response.text
    number = response.json()["number_match"]
    assert len(number) == 2 and number[0] in "12345678" and number[1].isdigit()
    assert response.json()["type"] == "push"

    [request] = device.pending()
    assert device.approve(request["id"], number) == {"status": "approved"}
    assert state(live, auth)["status"] == "approved"
    clock.advance(WINDOW.total_seconds())
    after = start_sign_in(live.api, "bob", expect="mfa_required")
    assert [(m["id"], m["type"]) for m in after["methods"]] == [(method_id, "push")]


def test_the_link_sets_up_one_phone_only(live, bob, clock, tmp_path):
    auth = start_sign_in(live.api, "bob", expect="registration_required")
    url = live.api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"}).json()["enrolment_url"]
    first = Device.enrol(url, "Pixel", None, now=fixed_time(clock))
    assert refusal(lambda: Device.enrol(url, "Other", None, now=fixed_time(clock))) == (410, "enrolment_invalid")
    assert first.pending() == []  # the first phone is the one set up


def test_a_later_sign_in_waits_on_the_phone_until_it_approves(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth = start_sign_in(live.api, "bob", expect="mfa_required")
    number = started(live, auth, method_id)
    created = clock.now()

    [request] = device.pending()
    assert request["service"] == service_name(live)
    assert request["app"] == "live-tests"  # the API key's name
    assert datetime.fromisoformat(request["created_at"]) == created
    assert datetime.fromisoformat(request["expires_at"]) == created + TTL
    assert request["source_ip"] == "127.0.0.1"
    assert state(live, auth)["status"] == "pending"

    assert device.approve(request["id"], number) == {"status": "approved"}
    assert state(live, auth)["status"] == "approved"
    assert device.pending() == []


def test_a_wrong_number_denies_the_sign_in_for_good_and_is_audited_as_suspicious(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    wrong = "99" if number != "99" else "11"

    assert refusal(lambda: device.approve(request_id, wrong)) == (422, "number_mismatch")
    shown = state(live, auth)
    assert (shown["status"], shown["reason"]) == ("denied", "number_mismatch")
    [row] = audits(live, "number_mismatch")
    assert (row.outcome, row.username, row.reason) == ("suspicious", "bob", "number_mismatch")
    # not retryable: neither the right number now, nor a new request on this sign-in
    assert refusal(lambda: device.approve(request_id, number)) == (409, "not_pending")
    assert challenge(live, auth, method_id).status_code == 409
    assert state(live, auth)["status"] == "denied"
    # Counted as a failure: on the unfamiliar counter, as every failure of a sign-in through the API (docs/lockout.md).
    assert run_in(live.app, lambda db, svc: (lambda u: (u.failed_count, u.unfamiliar_failed_count))(
        db.get(User, bob.id))) == (0, 1)


# --- signatures ---------------------------------------------------------------------------------------

BAD_SIGNATURES: dict[str, Callable[[Device, FixedClock, str, bytes], dict[str, str]]] = {
    "unsigned": lambda device, clock, path, body: {},
    "another key": lambda device, clock, path, body: signing.sign_request(
        signing.new_private_key(), "POST", path, body, device.device_id, now=int(clock.now().timestamp())),
    "61 s old": lambda device, clock, path, body: signing.sign_request(
        device.private_key, "POST", path, body, device.device_id, now=int(clock.now().timestamp()) - 61),
    "61 s ahead": lambda device, clock, path, body: signing.sign_request(
        device.private_key, "POST", path, body, device.device_id, now=int(clock.now().timestamp()) + 61),
    "another path": lambda device, clock, path, body: signed(
        device, clock, "POST", path.replace("/approve", "/deny"), body),
    "another body": lambda device, clock, path, body: signed(device, clock, "POST", path, b'{"number": "00"}'),
    "another device id": lambda device, clock, path, body: {
        **signed(device, clock, "POST", path, body), "X-Device-Id": "0" * 32},
}


@pytest.mark.parametrize("how", list(BAD_SIGNATURES))
def test_an_approval_not_signed_rightly_is_refused_and_changes_nothing(live, bob, clock, tmp_path, how):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    path, body = approve_path(request_id), number_body(number)

    response = send(live, "POST", path, body, BAD_SIGNATURES[how](device, clock, path, body))
    assert (response.status_code, response.json()["error"]) == (401, "invalid_signature")
    assert state(live, auth)["status"] == "pending"
    assert [r["id"] for r in device.pending()] == [request_id]
    assert device.approve(request_id, number) == {"status": "approved"}


def test_a_signature_60_s_old_is_still_fresh(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    path, body = approve_path(request_id), number_body(number)
    headers = signing.sign_request(device.private_key, "POST", path, body, device.device_id,
                                   now=int(clock.now().timestamp()) - 60)
    assert send(live, "POST", path, body, headers).status_code == 200


def test_a_replayed_approval_is_refused_as_a_bad_signature(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    path, body = approve_path(request_id), number_body(number)
    headers = signed(device, clock, "POST", path, body)

    assert send(live, "POST", path, body, headers).status_code == 200
    replay = send(live, "POST", path, body, headers)
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_signature")  # not 409: refused unread
    assert state(live, auth)["status"] == "approved"
    assert len(audits(live, "sign_in", "approved")) == 2  # the registration's and this one: once


def test_a_replayed_request_leaves_a_waiting_sign_in_waiting(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    headers = signed(device, clock, "GET", "/device/v1/requests", b"")

    assert send(live, "GET", "/device/v1/requests", b"", headers).status_code == 200
    replay = send(live, "GET", "/device/v1/requests", b"", headers)
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_signature")
    assert state(live, auth)["status"] == "pending"
    assert device.approve(request_id, number) == {"status": "approved"}


# --- lifetimes and fatigue limits ------------------------------------------------------------------------


def test_a_request_unanswered_for_two_minutes_ends_the_sign_in_as_no_response(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)

    clock.advance(TTL.total_seconds() - 1)
    assert [r["id"] for r in device.pending()] == [request_id]
    clock.advance(1)
    assert device.pending() == []
    assert refusal(lambda: device.approve(request_id, number)) == (409, "not_pending")
    shown = state(live, auth)
    assert (shown["status"], shown["reason"]) == ("denied", "no_response")

    fresh = started(live, auth, method_id)  # no_response may be retried: a new request on the same sign-in
    [request] = device.pending()
    assert device.approve(request["id"], fresh) == {"status": "approved"}
    assert state(live, auth)["status"] == "approved"


def test_a_fourth_request_in_five_minutes_is_refused_until_the_first_leaves_the_window(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    for _ in range(3):
        started(live, start_sign_in(live.api, "bob"), method_id)
        clock.advance(10)
    auth = start_sign_in(live.api, "bob")

    refused = challenge(live, auth, method_id)
    assert (refused.status_code, refused.json()["error"]) == (429, "rate_limited")
    wait = WINDOW.total_seconds() - 30  # the first request was 30 s ago
    assert refused.json()["retry_after"] == wait and refused.headers["Retry-After"] == str(int(wait))
    clock.advance(wait - 1)
    assert challenge(live, auth, method_id).status_code == 429
    clock.advance(1)
    assert started(live, auth, method_id)


def test_two_denials_in_a_row_pause_requests_for_fifteen_minutes(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    for _ in range(2):
        auth, request_id, _number = waiting(live, device, method_id)
        assert device.deny(request_id) == {"status": "denied"}
        assert state(live, auth)["reason"] == "push_denied"
    assert len(audits(live, "push_paused", "suspicious")) == 1

    auth = start_sign_in(live.api, "bob")
    refused = challenge(live, auth, method_id)
    assert (refused.status_code, refused.json()["error"]) == (429, "rate_limited")
    assert refused.json()["retry_after"] == 15 * 60 and refused.headers["Retry-After"] == "900"
    clock.advance(minutes=15, seconds=-1)
    auth = start_sign_in(live.api, "bob")  # the first one has timed out meanwhile
    assert challenge(live, auth, method_id).status_code == 429
    clock.advance(1)
    assert started(live, auth, method_id)


def test_a_denial_then_an_approval_is_no_run_of_denials(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    _auth, request_id, _number = waiting(live, device, method_id)
    device.deny(request_id)
    _auth, request_id, number = waiting(live, device, method_id)
    device.approve(request_id, number)
    _auth, request_id, _number = waiting(live, device, method_id)
    device.deny(request_id)
    clock.advance(WINDOW.total_seconds())
    assert started(live, start_sign_in(live.api, "bob"), method_id)
    assert audits(live, "push_paused") == []


# --- removed, reported, someone else's ----------------------------------------------------------------


def test_a_removed_phone_can_no_longer_answer(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    _auth, request_id, number = waiting(live, device, method_id)
    add_phone(lambda use: run_in(live.app, use), bob, "+447400123456", types=("sms",))  # a way left to sign in

    run_in(live.app, lambda db, svc: security_info.remove_method(db, svc, db.get(User, bob.id), method_id, None))

    assert refusal(device.pending) == (401, "invalid_signature")
    assert refusal(lambda: device.approve(request_id, number)) == (401, "invalid_signature")
    assert device_row(live, device.device_id) is None
    assert [m["type"] for m in start_sign_in(live.api, "bob")["methods"]] == ["sms"]


def test_this_was_not_me_blocks_the_account(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, _number = waiting(live, device, method_id)

    assert device.deny(request_id, fraud=True) == {"status": "fraud_reported"}
    assert state(live, auth)["status"] == "fraud_reported"
    assert len(audits(live, "fraud_reported", "blocked")) == 1
    locked = live.api.post("/authentications", {"username": "bob", "password": PASSWORD})
    assert (locked.status_code, locked.json()["error"]) == (423, "locked")


def test_another_device_or_persons_request_is_not_found(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)

    def second_link(db, svc):  # bob sets up a second phone from security info: enrolled, signing, not approved
        change = security_info.begin_change(db, svc, db.get(User, bob.id), None)
        return push_enrolment.register_push(db, svc, change.id, None).url

    second = Device.enrol(run_in(live.app, second_link), "Tablet", None, now=fixed_time(clock))
    personas.person(lambda use: run_in(live.app, use), "erin", role="admin", region="england")
    erins = enrol_phone(live, clock, tmp_path, "erin")[0]
    auth, request_id, number = waiting(live, device, method_id)

    assert second.pending() == [] and erins.pending() == []
    assert refusal(lambda: second.approve(request_id, number)) == (404, "not_found")
    assert refusal(lambda: erins.approve(request_id, number)) == (404, "not_found")
    assert refusal(lambda: erins.deny(request_id, fraud=True)) == (404, "not_found")
    assert refusal(lambda: device.approve("0" * 32, number)) == (404, "not_found")
    assert state(live, auth)["status"] == "pending"
    assert device.approve(request_id, number) == {"status": "approved"}


# --- Web Push -------------------------------------------------------------------------------------------


class GoneEndpoint(LocalPushEndpoint):
    """A push service that has dropped the subscription (the app was uninstalled)."""

    def accept(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        return 410, "subscription expired"


@pytest.fixture
def endpoint():
    with LocalPushEndpoint() as listening:
        yield listening


class TestWebPush:
    VAPID_KEY = generate_vapid_private_key()

    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WEBPUSH_VAPID_PRIVATE_KEY": self.VAPID_KEY, "WEBPUSH_SUBJECT": "mailto:ops@example.org",
                "WEBPUSH_ENDPOINT_HOSTS": "127.0.0.1"}

    def test_each_request_is_pushed_encrypted_naming_it_but_not_its_number(self, live, bob, clock, tmp_path,
                                                                          endpoint):
        config = requests.get(live.url + "/device/v1/config", timeout=15).json()
        assert config == {"service": service_name(live), "vapid_public_key": vapid_public_key(self.VAPID_KEY)}
        device, method_id = registered_phone(live, clock, tmp_path, subscription=endpoint.subscription())
        assert endpoint.wait_for_message()["type"] == "sign_in_request"  # the set-up's own request

        _auth, request_id, number = waiting(live, device, method_id)
        payload = endpoint.wait_for_message()
        assert payload["request_id"] == request_id
        assert payload["title"] == f"Sign-in request for {service_name(live)}"
        assert (payload["type"], payload["service"], payload["app"]) == (
            "sign_in_request", service_name(live), "live-tests")
        assert datetime.fromisoformat(payload["created_at"]) == clock.now()
        assert number not in payload.values() and not any("number" in key for key in payload)
        assert endpoint.authorizations[-1].public_key == config["vapid_public_key"]
        assert endpoint.rejected == []

    def test_a_subscription_to_an_unlisted_host_is_dropped(self, live, bob, clock, tmp_path):
        with LocalPushEndpoint() as unlisted:
            subscription = {**unlisted.subscription(), "endpoint": f"http://localhost:{unlisted.port}{unlisted.path}"}
            device, method_id = registered_phone(live, clock, tmp_path, subscription=subscription)
            assert not subscription_kept(live, device.device_id)
            waiting(live, device, method_id)
            assert device.set_subscription(subscription) == {"ok": True}
            clock.advance(TTL.total_seconds())  # the first request has ended
            waiting(live, device, method_id)
            assert (unlisted.received, unlisted.rejected) == ([], [])
            assert not subscription_kept(live, device.device_id)

    def test_a_subscription_the_push_service_says_is_gone_is_forgotten(self, live, bob, clock, tmp_path):
        with GoneEndpoint() as gone:
            device, auth, method_id = enrol_phone(live, clock, tmp_path, subscription=gone.subscription())
            assert subscription_kept(live, device.device_id)
            started(live, auth, method_id)
            assert [status for status, _ in gone.rejected] == [410]
            assert not subscription_kept(live, device.device_id)
            started(live, auth, method_id)  # a new request: nothing more is posted there
            assert len(gone.rejected) == 1
            assert len(device.pending()) == 1  # the phone still sees it by polling


# --- the reference authenticator's command line ------------------------------------------------------------


class TestCommandLine:
    @pytest.fixture
    def clock(self):
        """The command line signs with the real time: the server's clock starts there."""
        return FixedClock(datetime.now(timezone.utc))

    @staticmethod
    def authenticator(state_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "authenticator", "--state", str(state_file), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    def test_enrol_list_approve_and_a_wrong_number(self, live, bob, clock, tmp_path):
        state_file = tmp_path / "state.json"
        auth = start_sign_in(live.api, "bob", expect="registration_required")
        registered = live.api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"}).json()

        enrolled = self.authenticator(state_file, "enrol", registered["enrolment_url"])
        assert enrolled.returncode == 0, enrolled.stderr
        assert device_row(live, enrolled.stdout.split()[-1]) is not None  # it prints the device id last

        for expected in ("approved", "number_mismatch"):
            number = started(live, auth, registered["method_id"])
            listed = self.authenticator(state_file, "pending")
            assert listed.returncode == 0, listed.stderr
            [line] = listed.stdout.splitlines()
            request_id = json.loads(line)["id"]
            if expected == "approved":
                answered = self.authenticator(state_file, "approve", request_id, number)
                assert (answered.returncode, answered.stdout.strip()) == (0, "approved"), answered.stderr
                assert state(live, auth)["status"] == "approved"
                auth = start_sign_in(live.api, "bob", expect="mfa_required")
            else:
                wrong = "99" if number != "99" else "11"
                answered = self.authenticator(state_file, "approve", request_id, wrong)
                assert answered.returncode != 0
                assert len(answered.stderr.strip().splitlines()) == 1 and "number_mismatch" in answered.stderr
                assert state(live, auth)["reason"] == "number_mismatch"


# --- races ------------------------------------------------------------------------------------------------


def all_at_once(jobs: list[Callable[[], int]]) -> list[int]:
    """Each job in its own thread, released together; their HTTP statuses, sorted."""
    def answering(job: Callable[[], int]) -> Callable[[], int]:
        def run() -> int:
            try:
                return job()
            except Refused as refused:
                return refused.status
        return run
    return run_together([answering(job) for job in jobs])


def test_twenty_approvals_of_one_request_at_once_approve_it_once(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)

    def approve() -> int:  # a Device each: its own HTTP session, its own nonce
        Device(live.url, device.device_id, device.private_key, now=fixed_time(clock)).approve(request_id, number)
        return 200

    assert all_at_once([approve] * WAYS) == [200] + [409] * (WAYS - 1)
    assert state(live, auth)["status"] == "approved"
    assert len(audits(live, "sign_in", "approved")) == 2  # the registration's and this one


def test_twenty_push_requests_for_one_person_at_once_stop_at_three(live, bob, clock, tmp_path):
    _device, method_id = registered_phone(live, clock, tmp_path)
    sign_ins = [start_sign_in(live.api, "bob")["id"] for _ in range(WAYS)]
    headers = dict(live.api.http.headers)

    def start(auth_id: str) -> int:
        return requests.post(f"{live.api.base}/authentications/{auth_id}/challenges", json={"method_id": method_id},
                             headers=headers, timeout=60).status_code

    assert all_at_once([partial(start, auth_id) for auth_id in sign_ins]) == [201] * 3 + [429] * (WAYS - 3)
    since = clock.now() - WINDOW
    assert run_in(live.app, lambda db, svc: db.scalar(select(func.count()).select_from(Challenge).where(
        Challenge.type == "push", Challenge.created_at > since))) == 3


def test_one_signed_approval_sent_twenty_times_at_once_is_accepted_once(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    path, body = approve_path(request_id), number_body(number)
    headers = signed(device, clock, "POST", path, body)

    assert all_at_once([lambda: send(live, "POST", path, body, headers).status_code] * WAYS) == (
        [200] + [401] * (WAYS - 1))
    assert state(live, auth)["status"] == "approved"
