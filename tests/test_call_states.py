"""The call state machine (mfa/calls.py) driven directly: no HTTP, no stand-in, no Twilio.

The sign-in and the call are started through the domain with the in-process provider
(tests/fake_telephony.py); each webhook is then the domain function it calls.
"""
from __future__ import annotations

import pytest

from mfa import authentications, calls, challenges
from mfa.unit_of_work import Transactions
from models import Authentication, Challenge
from tests.conftest import PASSWORD
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone

NUMBER = "+447400123456"


@pytest.fixture
def calling(runtime, run, bob):
    """bob's sign-in with a call placed to his phone: (fake provider, challenge id, CallSid)."""
    fake = FakeTelephony()
    svc = use_fake(runtime, fake)
    [voice_id] = add_phone(run, bob, NUMBER, types=("voice",))
    auth_id = run(lambda db, svc: authentications.start(db, svc, "bob", PASSWORD, None).id)
    with runtime.sessions() as s:
        challenge = challenges.start_challenge(Transactions(s), svc, auth_id, voice_id, None)
    assert fake.calls == [(NUMBER, challenge.id)]
    assert challenge.provider_sid is not None  # the CallSid the provider answered
    return challenge.id, challenge.provider_sid


def states(runtime, challenge_id):
    with runtime.sessions() as s:
        challenge = s.get(Challenge, challenge_id)
        auth = s.get(Authentication, challenge.authentication_id)
        return challenge.status, auth.status, auth.reason


def test_pressing_hash_after_answering_approves_the_sign_in(runtime, run, calling):
    challenge_id, call_sid = calling
    turn = run(lambda db, svc: calls.answered(db, svc, challenge_id, call_sid, None))
    assert turn.outcome == "prompt"
    turn = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "#", turn.turn))
    assert turn.outcome == "verified"
    assert states(runtime, challenge_id) == ("approved", "approved", "verified")


def test_pressing_zero_hash_reports_fraud_and_ends_the_sign_in(runtime, run, calling):
    challenge_id, call_sid = calling
    run(lambda db, svc: calls.answered(db, svc, challenge_id, call_sid, None))
    turn = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "0#", 0))
    assert turn.outcome == "fraud_recorded"
    assert states(runtime, challenge_id) == ("fraud", "fraud_reported", "fraud_reported")


def test_a_repeated_key_webhook_hears_the_same_ending_and_changes_nothing(runtime, run, calling):
    challenge_id, call_sid = calling
    run(lambda db, svc: calls.answered(db, svc, challenge_id, call_sid, None))
    run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "#", 0))
    again = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "0#", 0))
    assert again.outcome == "verified"
    assert states(runtime, challenge_id) == ("approved", "approved", "verified")
