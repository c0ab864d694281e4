"""Phone-call verification end to end: the stand-in rings, answers, presses keys over real HTTP."""
from __future__ import annotations

import logging

import pytest

from sqlalchemy import select

from models import User
from tests.helpers import add_phone, enrol_app, method_id, pyotp_code, ring, start_sign_in, state
from tests.personas import ALICE, MOBILE, PASSWORD


def heard(phones, sid) -> str:
    """The prompts the callee heard, by catalogue name, whether played or spoken."""
    from voice_prompts import catalogue

    spoken = {catalogue.text(n, lang, "Secure Sign-in"): n
              for n in catalogue.PROMPT_NAMES for lang in catalogue.LANGUAGES}
    names = []
    for event in phones.call(sid).transcript:
        if event[0] == "play":
            names.append(event[1].split("/")[-1].split(".wav")[0])
        elif event[0] == "say":
            names.append(spoken.get(event[1], event[1]))
    return " | ".join(names)


def test_pressing_hash_approves_the_sign_in(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    assert state(live, auth)["status"] == "pending"
    phones.press(sid, "#")  # posted the moment it is pressed: no inter-digit timeout to lapse
    phones.wait_idle()
    assert state(live, auth)["status"] == "approved"
    assert "verified" in heard(phones, sid)
    assert phones.call(sid).status == "completed"


def test_the_prompt_is_heard_inside_the_gather_and_names_every_key(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    said = heard(phones, sid)
    for prompt in ("greeting", "press_hash", "report_fraud", "not_mine"):
        assert prompt in said
    gather = next(e for e in phones.call(sid).transcript if e[0] == "gather")[1]
    assert (gather["finishOnKey"], gather["numDigits"], gather["timeout"]) == ("", "1", "5")


def test_zero_hash_reports_fraud_and_blocks_the_account(live, phones, alice, caplog):
    caplog.set_level(logging.WARNING, logger="mfa.calls")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "0#")
    phones.wait_idle()
    assert state(live, auth)["status"] == "fraud_reported"
    assert "fraud_recorded" in heard(phones, sid)
    blocked = live.api.post("/authentications", {"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 423
    assert any("FRAUD REPORTED by alice" in r.getMessage() for r in caplog.records)
    assert not any(ALICE[3:] in r.getMessage() for r in caplog.records)


def test_a_fraud_block_lasts_until_users_unlock(live, phones, alice, clock):
    from mfa import accounts

    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "0#")
    clock.advance(days=30)
    assert live.api.post("/authentications", {"username": "alice", "password": PASSWORD}).status_code == 423
    rt = live.app.extensions["mfa"]
    with rt.sessions() as s:
        accounts.unlock(s, rt.services, "alice")
        s.commit()
    assert live.api.post("/authentications", {"username": "alice", "password": PASSWORD}).status_code == 201


def test_nine_puts_the_number_on_the_do_not_call_list(live, phones, alice, clock):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "9")
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "do_not_call")
    assert "do_not_call" in heard(phones, sid)
    clock.advance(60)
    again = start_sign_in(live.api, "alice", expect="mfa_required")
    voice = next(m for m in again["methods"] if m["type"] == "voice")
    refused = live.api.post(f"/authentications/{again['id']}/challenges", {"method_id": voice["id"]})
    assert refused.status_code == 422 and refused.json()["error"] == "do_not_call"
    assert len(phones.calls(to=ALICE)) == 1


def test_silence_repeats_the_prompt_once_then_denies_with_no_input(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.lapse(sid)
    assert "no_input" in heard(phones, sid)
    assert state(live, auth)["status"] == "pending"
    phones.lapse(sid)
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "no_input")
    assert heard(phones, sid).endswith("no_input_goodbye")


def test_a_wrong_key_twice_denies_with_wrong_key(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "5")
    assert "not_recognised" in heard(phones, sid)
    assert state(live, auth)["status"] == "pending"
    phones.press(sid, "5")
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "wrong_key")


def test_hanging_up_denies(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.hang_up(sid)
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "hung_up")


@pytest.mark.parametrize("behaviour, reason", [
    ("busy", "busy"), ("no-answer", "no_answer"), ("failed", "call_failed"),
])
def test_calls_that_are_not_answered_deny_with_their_reason(live, phones, alice, behaviour, reason):
    phones.set_behaviour(ALICE, behaviour)
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    ring(live, phones, auth)
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", reason)


def test_ringing_out_denies_with_no_answer(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.ring_out(sid)
    phones.wait_idle()
    assert state(live, auth)["reason"] == "no_answer"


def test_a_voicemail_never_approves_anything(live, phones, alice):
    phones.set_behaviour(ALICE, "machine")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.wait_idle()
    phones.lapse(sid)
    phones.lapse(sid)
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "no_input")


def test_with_machine_detection_an_answering_machine_is_hung_up_on(live, phones, alice):
    live.app.extensions["mfa"].services.telephony.machine_detection = True
    phones.set_behaviour(ALICE, "machine")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "machine_answered")
    assert phones.call(sid).params.get("MachineDetection") == "DetectMessageEnd"


def test_after_a_failed_call_the_person_may_try_again(live, phones, alice, clock):
    phones.set_behaviour(ALICE, "busy")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    ring(live, phones, auth)
    phones.wait_idle()
    phones.set_behaviour(ALICE, "ring")
    clock.advance(30)
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    assert state(live, auth)["status"] == "approved"


def test_a_new_challenge_ends_a_call_still_ringing(live, phones, alice, clock):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    first = ring(live, phones, auth)
    clock.advance(30)
    second = ring(live, phones, auth)
    phones.wait_idle()
    assert first != second
    assert phones.call(first).status in ("canceled", "completed")
    assert phones.call(second).status == "ringing"


def test_a_call_answered_after_its_sign_in_expired_says_goodbye(live, phones, alice, clock):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    clock.advance(minutes=10)
    phones.answer(sid)
    phones.wait_idle()
    assert heard(phones, sid) == "goodbye"
    assert phones.call(sid).status == "completed"
    assert state(live, auth)["status"] == "expired"


def test_a_sign_in_whose_call_failed_expires_on_time_too(live, phones, alice, clock):
    """A busy line leaves the sign-in able to go on, but only for its 10 minutes (issue 12, item 3)."""
    phones.set_behaviour(ALICE, "busy")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    ring(live, phones, auth)
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "busy")
    clock.advance(minutes=10)
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("expired", "timed_out")
    again = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    assert again.status_code == 409 and again.json()["error"] == "not_pending"
    assert len(phones.calls(to=ALICE)) == 1


def test_calls_go_out_with_a_short_ring_time_a_time_limit_and_status_events(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    params = phones.call(sid).params
    assert params["Timeout"] == "25" and params["TimeLimit"] == "90"
    assert params["Url"].startswith(live.url + "/twilio/voice/answer")
    assert params["StatusCallback"].startswith(live.url + "/twilio/voice/status")
    assert params["StatusCallbackEvent"] == ["ringing", "completed"]  # only the callbacks acted on
    assert not {"MachineDetection", "AsyncAmd"} & params.keys()  # VOICE_MACHINE_DETECTION is off by default


def test_a_person_who_answers_in_welsh_hears_welsh(live, phones, run):
    from mfa import accounts

    user = run(lambda db, svc: accounts.create_user(db, svc, "rhian", PASSWORD, role="admin", language="cy-GB"))
    add_phone(run, user, "+447400333444", "mobile", types=("voice",))
    auth = start_sign_in(live.api, "rhian", expect="mfa_required")
    sid = ring(live, phones, auth, "+447400333444")
    phones.answer(sid)
    events = [e for e in phones.call(sid).transcript if e[0] in ("say", "play")]
    assert events and all(("cy-GB" in str(e[1])) or (len(e) > 2 and e[2] == "cy-GB") for e in events)


def test_the_call_language_can_be_chosen_at_registration(live, phones, bob):
    auth = start_sign_in(live.api, "bob")
    response = live.api.post(f"/authentications/{auth['id']}/registrations", {
        "type": "phone", "number": "07400 555666", "kind": "mobile", "delivery": "voice", "language": "cy-GB"})
    assert response.status_code == 201
    phones.wait_idle()
    sid = phones.calls(to="+447400555666")[-1].sid
    phones.answer(sid)
    plays = [e[1] for e in phones.call(sid).transcript if e[0] == "play"]
    assert plays and all("/voice-prompts/cy-GB/" in url for url in plays)


def test_an_unknown_call_language_is_refused(live, phones, bob):
    auth = start_sign_in(live.api, "bob")
    response = live.api.post(f"/authentications/{auth['id']}/registrations", {
        "type": "phone", "number": "07400 555666", "kind": "mobile", "delivery": "voice", "language": "fr-FR"})
    assert response.status_code == 400
    assert phones.calls() == []


def test_after_a_fraud_report_no_other_open_sign_in_can_ring_or_approve(live, phones, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    first, second = start_sign_in(live.api), start_sign_in(live.api)
    live.api.post(f"/authentications/{first['id']}/challenges", {"method_id": method_id(first, "voice")})
    phones.wait_idle()
    sid = phones.calls(to=MOBILE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "0#")
    phones.wait_idle()
    other = live.api.get(f"/authentications/{second['id']}").json()
    assert other["status"] == "locked"
    clock.advance(30)
    again = live.api.post(f"/authentications/{second['id']}/challenges", {"method_id": method_id(second, "voice")})
    assert again.status_code in (409, 423)
    assert len(phones.calls(to=MOBILE)) == 1


def test_a_call_ringing_for_another_sign_in_is_ended_by_a_fraud_report(live, phones, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    first, second = start_sign_in(live.api), start_sign_in(live.api)
    live.api.post(f"/authentications/{second['id']}/challenges", {"method_id": method_id(second, "voice")})
    live.api.post(f"/authentications/{first['id']}/challenges", {"method_id": method_id(first, "voice")})
    phones.wait_idle()
    ringing_second, reporting = phones.calls(to=MOBILE)
    phones.answer(reporting.sid)
    phones.press(reporting.sid, "0#")
    phones.wait_idle()
    assert phones.call(ringing_second.sid).status in ("canceled", "completed")


def test_an_app_code_still_works_after_a_call_was_not_answered(live, phones, run, bob, clock):
    secret = enrol_app(live.api, clock)
    add_phone(run, bob, MOBILE, types=("voice",))
    phones.set_behaviour(MOBILE, "no-answer")
    auth = start_sign_in(live.api)
    live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    phones.wait_idle()
    assert live.api.get(f"/authentications/{auth['id']}").json()["reason"] == "no_answer"
    done = live.api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert done.status_code == 200 and done.json()["status"] == "approved"


def test_a_refused_registration_leaves_the_call_language_alone(live, phones, bob):
    phones.set_rest_error(MOBILE, 21211)
    auth = start_sign_in(live.api)
    refused = live.api.post(f"/authentications/{auth['id']}/registrations", {
        "type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "voice", "language": "cy-GB"})
    assert refused.status_code == 422
    with live.app.extensions["mfa"].sessions() as s:
        assert s.scalars(select(User).where(User.username == "bob")).one().language == "en-GB"
