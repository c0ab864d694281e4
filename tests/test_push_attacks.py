"""What an attacker review of push approvals found, each fixed and kept fixed.

Each test names the attack; tests/test_push_api.py has the rest of the rules."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from authenticator import signing
from authenticator.client import Device
from authenticator.push_endpoint import PushKeys
from devices import webpush
from devices.webpush import WebPushSender
from mfa import cancellation, limits, lockout, push_enrolment, security_info
from mfa.push_delivery import FAILED
from mfa.webpush_keys import generate_vapid_private_key
from models import User
from tests.browser_steps import post_form
from tests.conftest import run_in
from tests.helpers import start_sign_in, state
from tests.test_push_api import WINDOW, audits, refusal, registered_phone, waiting


def test_cancel_on_the_sign_in_screen_leaves_this_was_not_me_to_the_phone(live, bob, clock, tmp_path):
    """Whoever has the password pressed Cancel to hide their attempt: the phone still lists it, Approve
    approves nothing, and "This wasn't me" still blocks the account (as 0# does on a cancelled call)."""
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    run_in(live.app, lambda db, svc: cancellation.cancel(db, svc, auth["id"]))
    [listed] = device.pending()
    assert listed["id"] == request_id and listed["cancelled"] is True
    assert device.deny(request_id, fraud=True) == {"status": "fraud_reported"}
    assert run_in(live.app, lambda db, svc: db.get(User, db.merge(bob).id).fraud_blocked_at) is not None
    assert len(audits(live, "fraud_reported", "blocked")) == 1


def test_a_cancelled_sign_ins_request_cannot_be_approved(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    run_in(live.app, lambda db, svc: cancellation.cancel(db, svc, auth["id"]))
    assert refusal(lambda: device.approve(request_id, number)) == (409, "not_pending")
    assert state(live, auth)["status"] == "denied" and state(live, auth)["reason"] == "cancelled_by_person"
    [listed] = device.pending()  # a tap on Approve first must not take the report away from the owner
    assert listed["cancelled"] is True
    assert device.deny(request_id, fraud=True) == {"status": "fraud_reported"}


def test_locking_the_account_with_wrong_passwords_does_not_stop_a_report(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, number = waiting(live, device, method_id)
    # Wrong passwords on the sign-in page from where bob signs in (a familiar source): the lockout
    # every step refuses. Through the API they would lock only unfamiliar sources (docs/lockout.md).
    run_in(live.app, lambda db, svc: lockout.remember_source(db, svc, db.merge(bob).id, "127.0.0.1"))
    for _ in range(10):
        post_form(live.app.test_client(), "/sign-in", {"username": "bob", "password": "wrong password"})
    assert refusal(lambda: device.approve(request_id, number)) == (423, "locked")
    assert device.deny(request_id, fraud=True) == {"status": "fraud_reported"}
    assert run_in(live.app, lambda db, svc: db.get(User, db.merge(bob).id).fraud_blocked_at) is not None


def test_no_more_than_ten_requests_an_hour_reach_the_phone(live, bob, clock, tmp_path):
    device, method_id = registered_phone(live, clock, tmp_path)
    sent = 0
    for _ in range(12):
        auth = start_sign_in(live.api, "bob", expect="mfa_required")
        answer = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id})
        sent += answer.status_code == 201
        if answer.status_code == 429:
            assert "in the last hour" in answer.json()["message"] or "5 minutes" in answer.json()["message"]
        clock.advance(WINDOW.total_seconds() / 3 + 1)  # never 3 in 5 minutes
    per_hour = live.app.extensions["mfa"].services.limits.number(limits.PUSH_REQUESTS_PER_HOUR)
    assert sent == per_hour - 1  # the set-up's own request counts too
    assert audits(live, "challenge_refused", "rate_limited")[-1].reason == "push_hourly_cap"


def test_a_set_up_link_dies_with_the_sign_in_that_made_it(live, bob, clock, tmp_path):
    auth = start_sign_in(live.api, "bob", expect="registration_required")
    url = live.api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"}).json()["enrolment_url"]
    run_in(live.app, lambda db, svc: cancellation.cancel(db, svc, auth["id"]))
    assert refusal(lambda: Device.enrol(url, "Pixel", tmp_path / "s.json", now=lambda: clock.now().timestamp())
                   ) == (410, "enrolment_invalid")


def test_another_sign_in_cannot_finish_a_set_up_it_did_not_start(live, alice, clock, tmp_path):
    """A change started, its link opened by a phone, the change abandoned; a later change must start its own."""
    def run(use):
        return run_in(live.app, use)

    first = run(lambda db, svc: security_info.begin_change(db, svc, db.merge(alice), "127.0.0.1"))
    enrolment = run(lambda db, svc: push_enrolment.register_push(db, svc, first.id, "127.0.0.1"))
    Device.enrol(enrolment.url, "Pixel", tmp_path / "s.json", now=lambda: clock.now().timestamp())
    later = run(lambda db, svc: security_info.begin_change(db, svc, db.merge(alice), "127.0.0.1"))
    from mfa import challenges
    from mfa.errors import NotPending
    from mfa.unit_of_work import Transactions
    rt = live.app.extensions["mfa"]
    with rt.sessions() as s, pytest.raises(NotPending):
        challenges.start_challenge(Transactions(s), rt.services, later.id, enrolment.method.id, "127.0.0.1")


@pytest.mark.parametrize("token", ["\ud800" * 30, "a" * 19, "a" * 101, "a b" * 10, "é" * 30])
def test_a_malformed_set_up_token_is_a_400_not_a_crash(client, clock, token):
    key = signing.new_private_key()
    body = json.dumps({"token": token, "public_key": signing.public_key_b64(key)}).encode()
    headers = signing.sign_request(key, "POST", "/device/v1/enrol", body, "", now=int(clock.now().timestamp()))
    answer = client.post("/device/v1/enrol", data=body, headers={**headers, "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json["error"] == "bad_request"


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/device/v1/nowhere", 404), ("GET", "/device/v1/enrol", 405), ("GET", "/device/v1/requests/", 404)])
def test_the_device_api_answers_every_error_in_json(client, method, path, status):
    answer = client.open(path, method=method)
    assert answer.status_code == status and answer.is_json and "error" in answer.json


def test_a_database_outage_on_the_device_api_is_a_json_503(app_config, tmp_path):
    from app import create_app

    app = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/folder/db.sqlite3"})
    answer = app.test_client().get("/device/v1/requests", headers={"X-Device-Id": "a" * 32})
    assert answer.status_code == 503 and answer.get_json()["error"] == "unavailable"
    app.extensions["mfa"].engine.dispose()


class _Holding(BaseHTTPRequestHandler):
    """A push service that does not answer until told to: what a slow or hostile one does."""

    release = threading.Event()

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.release.wait(30)
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_push_service_that_does_not_answer_holds_the_sign_in_no_longer_than_the_deadline(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Holding)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(webpush, "DEADLINE", 0.5)
    sender = WebPushSender(generate_vapid_private_key(), "mailto:ops@example.org", ("127.0.0.1",))
    subscription: dict[str, object] = {"endpoint": f"http://127.0.0.1:{server.server_port}/push/x",
                                       "keys": PushKeys().public_keys()}
    try:
        outcome = sender.send(subscription, {"type": "sign_in_request"})
        assert outcome == FAILED and not _Holding.release.is_set()  # back while the service still holds it
    finally:
        _Holding.release.set()
        sender.close()
        server.shutdown()
        server.server_close()


def test_a_push_that_fails_in_any_way_never_fails_the_sign_in():
    sender = WebPushSender(generate_vapid_private_key(), "mailto:ops@example.org", ("127.0.0.1",))
    broken: dict[str, object] = {"endpoint": "http://127.0.0.1:9/push/x", "keys": {"p256dh": "not a key", "auth": "A"}}
    assert sender.send(broken, {"type": "sign_in_request"}) == FAILED


def test_only_the_phone_can_report_a_request(live, bob, clock, tmp_path):
    """The reporting path needs the device's key: an unsigned report (someone else's DoS) is refused."""
    device, method_id = registered_phone(live, clock, tmp_path)
    auth, request_id, _ = waiting(live, device, method_id)
    answer = requests.post(f"{live.url}/device/v1/requests/{request_id}/deny", json={"fraud": True}, timeout=10)
    assert answer.status_code == 401
    assert state(live, auth)["status"] == "pending"


def test_every_answer_to_one_request_at_once_leaves_one_consistent_ending(live, bob, clock, tmp_path):
    """Right numbers, wrong numbers, reports, a Cancel and status reads, twenty at once (PostgreSQL:
    truly concurrent; no deadlock, no 500): exactly one answer decides, and the sign-in agrees with it."""
    from functools import partial

    from tests.test_push_api import all_at_once, fixed_time

    device, method_id = registered_phone(live, clock, tmp_path)
    def answer(how: str, auth: dict, request_id: str, number: str) -> int:
        phone = Device(live.url, device.device_id, device.private_key, now=fixed_time(clock))
        if how == "right":
            phone.approve(request_id, number)
        elif how == "wrong":
            phone.approve(request_id, "11" if number != "11" else "12")
        elif how == "report":
            phone.deny(request_id, fraud=True)
        elif how == "cancel":
            run_in(live.app, lambda db, svc: cancellation.cancel(db, svc, auth["id"]))
        else:
            state(live, auth)
        return 200

    for _round in range(3):
        auth, request_id, number = waiting(live, device, method_id)
        hows = ["right"] * 5 + ["wrong"] * 5 + ["report"] * 4 + ["cancel"] + ["read"] * 5
        jobs: list[Callable[[], int]] = [partial(answer, how, auth, request_id, number) for how in hows]
        statuses = all_at_once(jobs)
        assert all(s in (200, 409, 422, 423) for s in statuses), statuses
        final = state(live, auth)
        blocked = run_in(live.app, lambda db, svc: db.get(User, db.merge(bob).id).fraud_blocked_at)
        if blocked is not None:  # a report decided (before or after a Cancel)
            assert final["status"] in ("fraud_reported", "denied")
            run_in(live.app, lambda db, svc: setattr(db.get(User, db.merge(bob).id), "fraud_blocked_at", None))
        else:
            assert (final["status"], final["reason"]) in (
                ("approved", "verified"), ("denied", "number_mismatch"), ("denied", "cancelled_by_person"))
        clock.advance(20 * 60)  # past the fatigue limits and the pause
