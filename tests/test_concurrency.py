"""Two workers cannot both win: one valid code, checked 20 times at once, approves once."""
from __future__ import annotations

import os
import threading

import pytest

from mfa import authentications, checks
from mfa.errors import MfaError
from mfa.unit_of_work import use_case
from tests.helpers import enrol_app, pyotp_code, start_sign_in

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level concurrency needs PostgreSQL: set TEST_DATABASE_URL (.ci/run does)",
)


def test_twenty_simultaneous_checks_of_one_code_approve_exactly_once(api, bob, clock, runtime):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    code = pyotp_code(secret, clock.now())
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def check():
        with runtime.sessions() as session:
            start.wait()
            try:
                with use_case(session):
                    result = checks.check_code(session, runtime.services, auth["id"], code, "127.0.0.1")
                outcome = result.status
            except MfaError as refusal:
                outcome = refusal.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=check) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("approved") == 1, outcomes
    assert len(outcomes) == 20
    assert all(o in ("not_pending", "invalid_code") for o in outcomes if o != "approved")
    with runtime.sessions() as session:
        final = authentications.get(session, runtime.services, auth["id"])
        assert final.status == "approved"


def test_twenty_simultaneous_deliveries_of_one_wrong_key_reprompt_once_and_deny_nothing(runtime, run, bob):
    """Twilio's retries of one webhook racing each other: one takes the turn, the others hear
    the same reprompt (mfa/calls._lost_turn); none of them uses up the call's last chance."""
    from mfa import calls, challenges
    from mfa.unit_of_work import Transactions
    from models import Challenge
    from tests.fake_telephony import FakeTelephony, use_fake
    from tests.helpers import add_phone

    svc = use_fake(runtime, FakeTelephony())
    [voice_id] = add_phone(run, bob, "+447400123456", types=("voice",))
    auth = start_sign_in(run)
    with runtime.sessions() as session:
        challenge = challenges.start_challenge(Transactions(session), svc, auth["id"], voice_id, None)
    challenge_id, call_sid = challenge.id, challenge.provider_sid
    run(lambda db, svc: calls.answered(db, svc, challenge_id, call_sid, None))
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def deliver():
        with runtime.sessions() as session:
            start.wait()
            with use_case(session):
                turn = calls.keys_pressed(session, runtime.services, challenge_id, call_sid, "5", 0)
        with lock:
            outcomes.append(turn.outcome)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes == ["reprompt_wrong_key"] * 20
    with runtime.sessions() as session:
        row = session.get(Challenge, challenge_id)
        assert (row.status, row.call_retries) == ("pending", 1)
