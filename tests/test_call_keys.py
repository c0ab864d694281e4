"""The keys of a `hash` call (CALL_APPROVAL=hash, the default), end to end through the stand-in.

`#` posts the moment it is pressed; `0` asks "to report it, press hash"; `*` repeats the
prompt, a few times at most; a key lost between two gathers costs a reprompt, never a wrong
outcome. What each key means is tested as a table at the end (mfa/call_keys.py).
"""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from mfa import call_keys
from mfa.call_keys import CONFIRM_FRAUD, MAX_REPEATS, MENU
from models import AuditEvent, Challenge
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.helpers import ring, sign_webhook, start_sign_in, state
from tests.test_voice_calls import heard


def answered(live, phones) -> tuple[dict, str]:
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    return auth, sid


def outcome(live, auth) -> tuple[str, str | None]:
    shown = state(live, auth)
    return shown["status"], shown["reason"]


def gathers(phones, sid) -> list[dict]:
    return [event[1] for event in phones.call(sid).transcript if event[0] == "gather"]


def challenge_row(live, sid) -> Challenge:
    with live.app.extensions["mfa"].sessions() as s:
        return s.scalars(select(Challenge).where(Challenge.provider_sid == sid)).one()


def test_the_first_gather_posts_one_key_at_once(live, phones, alice):
    auth, sid = answered(live, phones)
    first = gathers(phones, sid)[0]
    assert (first["numDigits"], first["finishOnKey"], first["timeout"]) == ("1", "", "5")
    assert "ask=menu" in first["action"]


def test_hash_approves_the_moment_it_is_pressed_with_no_timeout_to_lapse(live, phones, alice):
    auth, sid = answered(live, phones)
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")
    call = phones.call(sid)
    assert "gather-timeout" not in [event[0] for event in call.transcript]
    assert heard(phones, sid).endswith("verified")


@pytest.mark.parametrize("before", ["", "5", "*", "0*"])  # on every turn: first, reprompt, repeats
def test_the_seconds_from_hash_to_verified_are_at_most_one(live, phones, alice, before):
    """Under Twilio's documented <Gather> timing, as the stand-in simulates it (its "wait" events)."""
    auth, sid = answered(live, phones)
    if before == "0*":
        phones.press(sid, "0*")  # at the fraud question `#` reports: measure the report's farewell
    elif before:
        phones.press(sid, before)
    phones.press(sid, "#")
    phones.wait_idle()
    call = phones.call(sid)
    pressed = max(i for i, event in enumerate(call.transcript) if event == ("digits-sent", "#"))
    farewell = next(i for i, event in enumerate(call.transcript) if i > pressed and event[0] in ("say", "play"))
    assert heard(phones, sid).split(" | ")[-1] == ("fraud_recorded" if before == "0*" else "verified")
    assert call.simulated_seconds(pressed, farewell) <= 1


@pytest.mark.parametrize("keys, ending, heard_last", [
    ("##", ("approved", "verified"), "verified"),  # the first `#` approves; the second is never needed
    ("0#", ("fraud_reported", "fraud_reported"), "fraud_recorded"),  # typed together
    ("0*#", ("fraud_reported", "fraud_reported"), "fraud_recorded"),  # `*` repeats the fraud question
    ("9", ("denied", "do_not_call"), "do_not_call"),  # at once: one key
])
def test_keys_pressed_in_one_go(live, phones, alice, keys, ending, heard_last):
    auth, sid = answered(live, phones)
    phones.press(sid, keys)
    phones.wait_idle()
    assert outcome(live, auth) == ending
    assert heard(phones, sid).endswith(heard_last) and "not_recognised" not in heard(phones, sid)


def test_zero_asks_for_hash_to_report_and_a_later_hash_reports_fraud(live, phones, alice):
    auth, sid = answered(live, phones)
    phones.press(sid, "0")
    assert heard(phones, sid).endswith("confirm_fraud")
    assert state(live, auth)["status"] == "pending"
    confirm = gathers(phones, sid)[-1]
    assert (confirm["numDigits"], "ask=fraud" in confirm["action"]) == ("1", True)
    phones.press(sid, "#")  # seconds later: the confirmation question waits for it
    phones.wait_idle()
    assert outcome(live, auth) == ("fraud_reported", "fraud_reported")
    assert heard(phones, sid).endswith("fraud_recorded")


def test_zero_then_a_pause_then_hash_still_reports_fraud(live, phones, alice):
    """The pause outlasts the confirmation's timeout: it is asked again, and `#` then reports."""
    auth, sid = answered(live, phones)
    phones.press(sid, "0")
    phones.lapse(sid)
    assert heard(phones, sid).endswith("no_input | confirm_fraud")
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == ("fraud_reported", "fraud_reported")


def test_a_hash_lost_after_zero_never_approves(live, phones, alice):
    """`0#` with the `#` dropped between the gathers (Twilio may), and nothing more: the fraud
    question is asked again (MAX_REPEATS), then the one reprompt, then no_input; never approved."""
    auth, sid = answered(live, phones)
    phones.press(sid, "0")
    for _ in range(call_keys.MAX_REPEATS + 1):
        phones.lapse(sid)
        assert outcome(live, auth) == ("pending", None)
    phones.lapse(sid)
    phones.wait_idle()
    assert outcome(live, auth) == ("denied", "no_input")
    assert "verified" not in heard(phones, sid)


def test_a_hash_lost_after_zero_costs_a_question_even_once_the_reprompt_is_used(live, phones, alice):
    """A wrong key has used the call's one reprompt; then `0#` loses its `#` between the gathers:
    the fraud question is asked again rather than the call ending, and `#` still reports fraud."""
    auth, sid = answered(live, phones)
    phones.press(sid, "5")  # the reprompt is used
    phones.press(sid, "0")
    phones.lapse(sid)  # the `#` was lost
    assert heard(phones, sid).endswith("confirm_fraud | no_input | confirm_fraud")
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == ("fraud_reported", "fraud_reported")


def test_zero_is_audited_even_when_no_hash_follows(live, phones, alice):
    auth, sid = answered(live, phones)
    phones.press(sid, "0")
    phones.hang_up(sid)
    phones.wait_idle()
    with live.app.extensions["mfa"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event == "fraud_key_pressed", AuditEvent.outcome == "suspicious")) == 1


def test_star_repeats_the_prompt_without_using_the_reprompt(live, phones, alice):
    auth, sid = answered(live, phones)
    phones.press(sid, "*")
    assert heard(phones, sid).count("greeting | press_hash | report_fraud | not_mine") == 2
    phones.press(sid, "5")  # a wrong key still gets its one reprompt
    assert heard(phones, sid).endswith("not_recognised | press_hash | report_fraud | not_mine")
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


def test_star_repeats_at_most_three_times_then_counts_as_a_wrong_key(live, phones, alice):
    auth, sid = answered(live, phones)
    phones.press(sid, "*" * MAX_REPEATS)
    assert heard(phones, sid).count("greeting") == 1 + MAX_REPEATS
    phones.press(sid, "*")
    assert heard(phones, sid).endswith("not_recognised | press_hash | report_fraud | not_mine")
    phones.press(sid, "*")
    phones.wait_idle()
    assert outcome(live, auth) == ("denied", "wrong_key")


def test_a_hash_call_has_no_number_to_match(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    voice = next(m for m in auth["methods"] if m["type"] == "voice")
    answer = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": voice["id"]}).json()
    assert "number_match" not in answer


def test_a_replayed_key_webhook_changes_nothing_twice(live, phones, alice):
    """Twilio retries: the no-input reprompt delivered twice is one reprompt, not a denial."""
    auth, sid = answered(live, phones)
    phones.press(sid, "5")  # a wrong key: the reprompt (turn 0 -> 1)
    [(_, url, digits)] = phones.call(sid).events("action")
    params = {"AccountSid": TEST_ACCOUNT_SID, "CallSid": sid, "Digits": digits}
    again = requests.post(url, data=params, headers=sign_webhook(TEST_AUTH_TOKEN, url, params), timeout=10)
    assert again.status_code == 200 and "<Gather" in again.text and "turn=1" in again.text  # the same reprompt
    assert state(live, auth)["status"] == "pending"
    assert challenge_row(live, sid).call_retries == 1
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == ("approved", "verified")


def test_call_step_stays_answered_or_later_once_answered(live, phones, alice):
    auth, sid = answered(live, phones)
    assert challenge_row(live, sid).call_step == "answered"
    phones.press(sid, "0")  # a question asked: nothing stored, the URL says which
    assert challenge_row(live, sid).call_step == "answered"
    phones.press(sid, "5")
    assert challenge_row(live, sid).call_step == "reprompt_wrong_key"


NUMBER = "47"


@pytest.mark.parametrize("digits, ask, number_match, repeats, meaning", [
    # a hash call's first question
    ("#", MENU, None, 0, call_keys.APPROVE),
    ("##", MENU, None, 0, call_keys.APPROVE),
    ("0", MENU, None, 0, call_keys.ASK_FRAUD),
    ("0#", MENU, None, 0, call_keys.REPORT_FRAUD),
    ("9", MENU, None, 0, call_keys.DO_NOT_CALL),
    ("9#", MENU, None, 0, call_keys.DO_NOT_CALL),
    ("*", MENU, None, 0, call_keys.REPEAT),
    ("*", MENU, None, MAX_REPEATS, call_keys.WRONG_KEY),
    ("", MENU, None, 0, call_keys.NO_INPUT),
    ("5", MENU, None, 0, call_keys.WRONG_KEY),
    ("47", MENU, None, 0, call_keys.WRONG_KEY),
    ("#5", MENU, None, 0, call_keys.WRONG_KEY),
    # the fraud question, either mode
    ("#", CONFIRM_FRAUD, None, 0, call_keys.REPORT_FRAUD),
    ("#", CONFIRM_FRAUD, NUMBER, 0, call_keys.REPORT_FRAUD),
    ("0", CONFIRM_FRAUD, None, 0, call_keys.REPEAT),
    ("*", CONFIRM_FRAUD, None, 0, call_keys.REPEAT),
    ("*", CONFIRM_FRAUD, None, MAX_REPEATS, call_keys.WRONG_KEY),
    ("", CONFIRM_FRAUD, None, 0, call_keys.NO_INPUT),
    ("9", CONFIRM_FRAUD, None, 0, call_keys.WRONG_KEY),
    ("1", CONFIRM_FRAUD, NUMBER, 0, call_keys.WRONG_KEY),
    # a number call's first question
    (NUMBER, MENU, NUMBER, 0, call_keys.APPROVE),
    ("48", MENU, NUMBER, 0, call_keys.MISMATCH),
    ("10", MENU, NUMBER, 0, call_keys.MISMATCH),
    ("#", MENU, NUMBER, 0, call_keys.WRONG_KEY),
    ("##", MENU, NUMBER, 0, call_keys.WRONG_KEY),
    ("4", MENU, NUMBER, 0, call_keys.WRONG_KEY),
    ("4#", MENU, NUMBER, 0, call_keys.WRONG_KEY),
    ("0#", MENU, NUMBER, 0, call_keys.REPORT_FRAUD),
    ("0", MENU, NUMBER, 0, call_keys.ASK_FRAUD),
    ("05", MENU, NUMBER, 0, call_keys.WRONG_KEY),
    ("9", MENU, NUMBER, 0, call_keys.DO_NOT_CALL),
    ("95", MENU, NUMBER, 0, call_keys.DO_NOT_CALL),
    ("*", MENU, NUMBER, 0, call_keys.REPEAT),
    ("*4", MENU, NUMBER, 0, call_keys.REPEAT),
    ("", MENU, NUMBER, 0, call_keys.NO_INPUT),
])
def test_what_keys_mean(digits, ask, number_match, repeats, meaning):
    assert call_keys.meaning(digits, ask, number_match, repeats, setting_up=False) == meaning
