"""Answering-machine detection (VOICE_MACHINE_DETECTION=true) can end a call at a voicemail's beep
or a fax, and never stops a person: after any other verdict the prompt plays and a key approves.

Detection runs in the background (AsyncAmd): its verdict comes to /twilio/voice/amd, signed like
every webhook, while the prompt plays.
"""
from __future__ import annotations

import pytest

from tests.helpers import ring, start_sign_in, state
from tests.personas import ALICE
from tests.test_webhooks import audit_count, post_signed


@pytest.fixture(autouse=True)
def detecting(app_config):
    app_config["VOICE_MACHINE_DETECTION"] = "true"  # autouse: set before `live` makes the app


@pytest.fixture
def answered(live, phones, alice):
    """alice's sign-in with its call answered by her: (sign-in, CallSid, the AMD callback URL)."""
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.wait_idle()
    return auth, sid, phones.call(sid).params["AsyncAmdStatusCallback"]


def verdict(url: str, sid: str, answered_by: str):
    return post_signed(url, {"CallSid": sid, "AnsweredBy": answered_by, "MachineDetectionDuration": "3100"})


def test_calls_ask_for_background_detection_that_waits_for_a_voicemails_beep(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    params = phones.call(ring(live, phones, auth)).params
    assert params["MachineDetection"] == "DetectMessageEnd"
    assert params["AsyncAmd"] == "true" and params["AsyncAmdStatusCallbackMethod"] == "POST"
    challenge_id = params["Url"].split("challenge=")[1]
    assert params["AsyncAmdStatusCallback"] == f"{live.url}/twilio/voice/amd?challenge={challenge_id}"


@pytest.mark.parametrize("answered_by", ["machine_start", "machine_end_silence", "machine_end_other", "unknown",
                                         "human"])
def test_a_verdict_other_than_a_beep_or_a_fax_leaves_the_call_to_the_keys(live, phones, answered, answered_by):
    auth, sid, amd_url = answered
    assert verdict(amd_url, sid, answered_by).status_code == 204
    assert state(live, auth)["status"] == "pending"
    assert phones.call(sid).status == "in-progress"
    phones.press(sid, "#")
    phones.wait_idle()
    assert state(live, auth)["status"] == "approved"


@pytest.mark.parametrize("answered_by", ["machine_end_beep", "fax"])
def test_a_voicemails_beep_or_a_fax_denies_and_hangs_up(live, phones, answered, answered_by):
    auth, sid, amd_url = answered
    assert verdict(amd_url, sid, answered_by).status_code == 204
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "machine_answered")
    call = phones.call(sid)
    assert call.status == "completed" and ("ended-by-api", "completed") in call.transcript


def test_a_repeated_verdict_denies_once_and_hangs_up_once(live, phones, answered):
    auth, sid, amd_url = answered
    for _ in range(2):
        assert verdict(amd_url, sid, "machine_end_beep").status_code == 204
    phones.wait_idle()
    assert audit_count(live, "challenge_failed", "denied") == 1
    assert [e for e in phones.call(sid).transcript if e[0] == "ended-by-api"] == [("ended-by-api", "completed")]


def test_a_verdict_after_the_hash_key_changes_nothing(live, phones, answered):
    auth, sid, amd_url = answered
    phones.press(sid, "#")
    phones.wait_idle()
    assert state(live, auth)["status"] == "approved"
    assert verdict(amd_url, sid, "machine_end_beep").status_code == 204
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("approved", "verified")
    assert not [e for e in phones.call(sid).transcript if e[0] == "ended-by-api"]


def test_a_verdict_for_another_call_changes_nothing(live, phones, answered):
    auth, sid, amd_url = answered
    assert verdict(amd_url, "CA" + "0" * 32, "machine_end_beep").status_code == 204
    assert state(live, auth)["status"] == "pending"
    assert phones.call(sid).status == "in-progress"


def test_an_unsigned_verdict_is_refused(live, phones, answered):
    auth, sid, amd_url = answered
    assert post_signed(amd_url, {"CallSid": sid, "AnsweredBy": "fax"}, signature="forged").status_code == 403
    assert state(live, auth)["status"] == "pending"


def test_a_person_whose_long_greeting_sounds_like_a_machine_still_approves_with_hash(live, phones, alice):
    phones.set_behaviour(ALICE, "long-greeting")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.wait_idle()
    assert phones.call(sid).answered_by in ("machine_start", "machine_end_other")  # the stand-in's detection
    assert state(live, auth)["status"] == "pending"
    phones.press(sid, "#")
    phones.wait_idle()
    assert state(live, auth)["status"] == "approved"


def test_an_answering_machine_hears_the_prompt_until_its_beep_then_is_hung_up_on(live, phones, alice):
    phones.set_behaviour(ALICE, "machine")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "machine_answered")
    assert phones.call(sid).status == "completed"


def test_machine_start_on_the_answer_webhook_still_plays_the_prompt(live, phones, answered):
    auth, sid, _ = answered
    challenge_id = phones.call(sid).params["Url"].split("challenge=")[1]
    response = post_signed(f"{live.url}/twilio/voice/answer?challenge={challenge_id}",
                           {"CallSid": sid, "CallStatus": "in-progress", "AnsweredBy": "machine_start"})
    assert "<Gather" in response.text
    assert state(live, auth)["status"] == "pending"
