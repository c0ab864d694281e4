"""The call state machine (mfa/calls.py) driven directly: no HTTP, no stand-in, no Twilio.

The sign-in and the call are started through the domain with the in-process provider
(tests/fake_telephony.py); each webhook is then the domain function it calls.
"""
from __future__ import annotations

import dataclasses

import pytest

from mfa import authentications, calls, challenges
from mfa.unit_of_work import Transactions
from models import Authentication, Challenge
from tests.conftest import PASSWORD
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone

NUMBER = "+447400123456"


def place_call(runtime, run, bob) -> Challenge:
    """bob's sign-in with a call placed to his phone, through a fake provider."""
    fake = FakeTelephony()
    svc = use_fake(runtime, fake)
    [voice_id] = add_phone(run, bob, NUMBER, types=("voice",))
    auth_id = run(lambda db, svc: authentications.start(db, svc, "bob", PASSWORD, None).id)
    with runtime.sessions() as s:
        challenge = challenges.start_challenge(Transactions(s), svc, auth_id, voice_id, None)
    assert fake.calls == [(NUMBER, challenge.id)]
    assert challenge.provider_sid is not None  # the CallSid the provider answered
    return challenge


@pytest.fixture
def calling(runtime, run, bob):
    """bob's sign-in with a call placed to his phone: (challenge id, CallSid)."""
    challenge = place_call(runtime, run, bob)
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


@pytest.fixture
def number_calling(runtime, run, bob):
    """As `calling`, with CALL_APPROVAL=number: (challenge id, CallSid, the number to key)."""
    runtime.services = dataclasses.replace(
        runtime.services, policy=dataclasses.replace(runtime.services.policy, call_approval="number"))
    challenge = place_call(runtime, run, bob)
    assert challenge.number_match is not None
    run(lambda db, svc: calls.answered(db, svc, challenge.id, challenge.provider_sid, None))
    return challenge.id, challenge.provider_sid, challenge.number_match


def test_zero_and_star_ask_without_changing_the_challenge(runtime, run, calling):
    challenge_id, call_sid = calling
    run(lambda db, svc: calls.answered(db, svc, challenge_id, call_sid, None))
    asked = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "0", 0))
    assert (asked.outcome, asked.ask, asked.turn) == ("prompt", "fraud", 0)
    repeated = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "*", 0, "fraud", 1))
    assert (repeated.outcome, repeated.ask, repeated.repeats) == ("prompt", "fraud", 2)
    with runtime.sessions() as s:
        row = s.get(Challenge, challenge_id)
        assert (row.status, row.call_retries, row.call_step) == ("pending", 0, "answered")
    reported = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "#", 0, "fraud", 2))
    assert reported.outcome == "fraud_recorded"


def test_hash_at_the_fraud_question_never_approves(runtime, run, calling):
    challenge_id, call_sid = calling
    run(lambda db, svc: calls.answered(db, svc, challenge_id, call_sid, None))
    run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "#", 0, "fraud"))
    assert states(runtime, challenge_id) == ("fraud", "fraud_reported", "fraud_reported")


def test_a_replayed_wrong_number_is_refused_once_and_the_next_one_denies(runtime, run, number_calling):
    challenge_id, call_sid, number = number_calling
    wrong = "12" if number != "12" else "13"
    for _ in range(3):  # the same webhook (turn 0) delivered three times
        refused = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, wrong, 0))
        assert (refused.outcome, refused.turn, refused.approval) == ("reprompt_mismatch", 1, "number")
    assert states(runtime, challenge_id) == ("pending", "pending", None)
    denied = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, wrong, 1))
    assert denied.outcome == "mismatch_goodbye"
    assert states(runtime, challenge_id) == ("denied", "denied", "number_mismatch")


def test_hash_never_approves_a_number_matched_call(runtime, run, number_calling):
    challenge_id, call_sid, number = number_calling
    turn = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, "#", 0))
    assert turn.outcome == "reprompt_wrong_key"
    approved = run(lambda db, svc: calls.keys_pressed(db, svc, challenge_id, call_sid, number, 1))
    assert approved.outcome == "verified"
    assert states(runtime, challenge_id) == ("approved", "approved", "verified")
