"""Number-matched calls (CALL_APPROVAL): the caller keys the two digits shown on the sign-in screen.

This module's server runs with CALL_APPROVAL=hash,admin:number and MFA for users too: alice
(an administrator) gets number-matched calls, erin (a user) the familiar `#` call.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from mfa.method_types.call import new_number_match
from mfa.policy import Policy
from models import AuditEvent, Challenge, User
from settings import SettingsError, load
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.helpers import add_phone, method_id, sign_webhook, start_sign_in, state
from tests.personas import ALICE, person
from tests.test_voice_calls import heard

A_NUMBER = re.compile(r"[1-8][0-9]")
ERIN = "+447400777888"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "CALL_APPROVAL": "hash,admin:number", "MFA_REQUIRED_ROLES": "admin,user"}


def call_with_number(live, phones, username: str = "alice", number: str = ALICE) -> tuple[dict, str, str]:
    """A sign-in whose call has been answered: (the sign-in, CallSid, the number on the screen)."""
    auth = start_sign_in(live.api, username, expect="mfa_required")
    answer = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    assert answer.status_code == 201, answer.text
    phones.wait_idle()
    sid = phones.calls(to=number)[-1].sid
    phones.answer(sid)
    return auth, sid, answer.json().get("number_match", "")


def wrong(number: str) -> str:
    """Another number the screen could have shown."""
    return "12" if number != "12" else "13"


def outcome(live, auth) -> tuple[str, str | None]:
    shown = state(live, auth)
    return shown["status"], shown["reason"]


def audited(live, event: str, outcome: str) -> int:
    with live.app.extensions["mfa"].sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.event == event, AuditEvent.outcome == outcome))


def test_the_challenge_answer_carries_two_digits_never_starting_with_0_or_9(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    assert A_NUMBER.fullmatch(number)
    with live.app.extensions["mfa"].sessions() as s:
        assert s.scalars(select(Challenge.number_match).where(Challenge.provider_sid == sid)).one() == number


def test_numbers_are_drawn_from_every_first_digit_1_to_8_and_never_0_or_9():
    drawn = [new_number_match() for _ in range(2000)]
    assert all(A_NUMBER.fullmatch(n) for n in drawn)
    assert {n[0] for n in drawn} == set("12345678")
    assert {n[1] for n in drawn} == set("0123456789")


def test_the_call_asks_for_the_number_with_a_two_digit_gather(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    assert heard(phones, sid) == "greeting | enter_number | report_fraud | not_mine"
    gather = next(e for e in phones.call(sid).transcript if e[0] == "gather")[1]
    assert (gather["numDigits"], gather["finishOnKey"], gather["timeout"]) == ("2", "", "4")


def test_the_right_number_approves(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, number)
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")
    assert heard(phones, sid).endswith("verified")


def test_a_wrong_number_is_refused_audited_and_a_second_one_denies(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, wrong(number))
    assert heard(phones, sid).endswith("number_mismatch | enter_number | report_fraud | not_mine")
    assert state(live, auth)["status"] == "pending"
    assert audited(live, "number_mismatch", "suspicious") == 1
    phones.press(sid, wrong(number))
    phones.wait_idle()
    assert outcome(live, auth) == ("denied", "number_mismatch")
    assert heard(phones, sid).endswith("mismatch_goodbye")
    assert audited(live, "number_mismatch", "suspicious") == 2
    again = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    assert again.status_code == 409  # not retryable: the sign-in has ended


def test_hanging_up_and_calling_again_buys_no_more_wrong_numbers(live, phones, alice, clock):
    """The limit is per sign-in: one wrong number, hang up, a new call (a new number): the next
    wrong number ends the sign-in. Each wrong number is also a failed attempt (the lockout)."""
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, wrong(number))
    phones.hang_up(sid)
    phones.wait_idle()
    assert outcome(live, auth) == ("denied", "hung_up")  # retryable: "call me again"
    clock.advance(31)  # past the spacing between calls
    answer = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    assert answer.status_code == 201, answer.text
    phones.wait_idle()
    second = phones.calls(to=ALICE)[-1].sid
    phones.answer(second)
    phones.press(second, wrong(answer.json()["number_match"]))
    phones.wait_idle()
    assert outcome(live, auth) == ("denied", "number_mismatch")
    assert heard(phones, second).endswith("mismatch_goodbye")
    with live.app.extensions["mfa"].sessions() as s:
        # alice has never completed a sign-in, so her sign-in's address is unfamiliar: that counter (smart lockout).
        assert s.scalar(select(User.unfamiliar_failed_count).where(User.username == "alice")) == 2


def test_a_call_twilio_did_not_confirm_still_gets_its_number_on_the_screen(live, phones, alice):
    """Twilio placed the call but its answer was lost (HTTP 500 after acting): the API answers 503,
    the call rings anyway and asks for its number, so the answer must carry that number."""
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    phones.fail_after_next_requests(1, 500)
    answer = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    assert (answer.status_code, answer.json()["error"]) == (503, "provider_unavailable")
    number = answer.json()["number_match"]
    assert A_NUMBER.fullmatch(number)
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    phones.answer(sid)
    phones.press(sid, number)
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


def test_after_one_wrong_number_the_right_one_still_approves(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, wrong(number))
    phones.press(sid, number)
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


def test_hash_alone_does_not_approve(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, "#")
    phones.lapse(sid)  # the inter-digit timeout posts the lone key
    assert heard(phones, sid).endswith("not_recognised | enter_number | report_fraud | not_mine")
    assert state(live, auth)["status"] == "pending"
    phones.press(sid, "##")
    phones.wait_idle()
    assert outcome(live, auth) == ("denied", "wrong_key")


def test_zero_hash_reports_fraud(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, "0#")
    phones.wait_idle()
    assert outcome(live, auth) == ("fraud_reported", "fraud_reported")


def test_zero_alone_asks_for_hash_to_report_fraud(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, "0")
    phones.lapse(sid)  # the inter-digit timeout posts the lone 0
    assert heard(phones, sid).endswith("confirm_fraud")
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == ("fraud_reported", "fraud_reported")


@pytest.mark.parametrize("keys", ["9", "95"])
def test_nine_stops_calls_to_the_number(live, phones, alice, keys):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, keys)
    phones.lapse(sid)
    phones.wait_idle()
    assert outcome(live, auth) == ("denied", "do_not_call")


def test_star_repeats_the_prompt(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, "*")
    phones.lapse(sid)
    assert heard(phones, sid).count("greeting | enter_number") == 2
    phones.press(sid, number)
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


def test_a_replayed_wrong_number_is_counted_once(live, phones, alice):
    auth, sid, number = call_with_number(live, phones)
    phones.press(sid, wrong(number))
    [(_, url, digits)] = phones.call(sid).events("action")
    params = {"AccountSid": TEST_ACCOUNT_SID, "CallSid": sid, "Digits": digits}
    for _ in range(2):  # Twilio's retries of the same request
        replayed = requests.post(url, data=params, headers=sign_webhook(TEST_AUTH_TOKEN, url, params), timeout=10)
        assert replayed.status_code == 200 and "<Gather" in replayed.text
    assert state(live, auth)["status"] == "pending"
    assert audited(live, "number_mismatch", "suspicious") == 1
    with live.app.extensions["mfa"].sessions() as s:
        row = s.scalars(select(Challenge).where(Challenge.provider_sid == sid)).one()
        assert (row.attempts, row.call_retries, row.call_step) == (1, 1, "reprompt_mismatch")
    phones.press(sid, number)
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


def test_a_registration_call_is_number_matched_too(live, phones, bob):
    auth = start_sign_in(live.api, "bob", expect="registration_required")
    answer = live.api.post(f"/authentications/{auth['id']}/registrations", {
        "type": "phone", "number": "07400 555666", "kind": "mobile", "delivery": "voice"})
    assert answer.status_code == 201
    number = answer.json()["number_match"]
    assert A_NUMBER.fullmatch(number)
    phones.wait_idle()
    sid = phones.calls(to="+447400555666")[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.lapse(sid)
    assert state(live, auth)["status"] == "pending"
    phones.press(sid, number)
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


def test_call_approval_is_chosen_per_role(live, phones, run):
    erin = person(run, "erin", role="user", region="england")
    add_phone(run, erin, ERIN, types=("voice",))
    auth, sid, number = call_with_number(live, phones, "erin", ERIN)
    assert number == ""  # role user: the default, `hash`
    assert heard(phones, sid) == "greeting | press_hash | report_fraud | not_mine"
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


@pytest.mark.parametrize("value, default, by_role", [
    (None, "hash", {}), ("hash", "hash", {}), ("number", "number", {}),
    ("hash,admin:number", "hash", {"admin": "number"}), ("admin:number", "hash", {"admin": "number"}),
    (" Number , admin : hash ", "number", {"admin": "hash"}),
])
def test_call_approval_is_read_from_the_setting(tmp_path: Path, value, default, by_role):
    settings = load({"CALL_APPROVAL": value} if value is not None else {}, tmp_path)
    assert (settings.call_approval, settings.call_approval_by_role) == (default, by_role)


@pytest.mark.parametrize("value", ["yes", "hash,number", "admin:", ":number", "admin:pin", "admin:number,admin:hash",
                                   "hash,,admin:number", "ad min:number",
                                   "hash,admins:number"])  # a misspelt role must not keep admins on hash
def test_a_malformed_call_approval_stops_start_up_naming_it(tmp_path: Path, value):
    with pytest.raises(SettingsError) as refused:
        load({"CALL_APPROVAL": value}, tmp_path)
    message = str(refused.value)
    assert message.startswith("CALL_APPROVAL ") and "\n" not in message


def test_the_policy_answers_by_role_then_the_default(alice):
    policy = Policy(frozenset({"admin"}), frozenset({"england"}), "number", {"user": "hash"})
    assert policy.call_approval_for(alice) == "number"
    assert Policy(frozenset(), frozenset(), "hash", {"admin": "number"}).call_approval_for(alice) == "number"
    assert Policy(frozenset(), frozenset()).call_approval_for(alice) == "hash"
