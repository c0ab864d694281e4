"""A set-up call (registering a phone) offers only `#` and `9`: `0`, `0#` and the fraud question
are wrong keys there, so whoever gets a call to a mistyped number cannot block the account."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mfa import call_keys
from mfa.call_keys import CONFIRM_FRAUD, MAX_REPEATS, MENU
from models import AuditEvent, User
from tests.helpers import start_sign_in, state
from tests.personas import PASSWORD
from tests.test_voice_calls import heard

NUMBER = "47"
NEW_PHONE = "+447400555666"


@pytest.mark.parametrize("digits, ask, number_match, meaning", [
    # a hash set-up call: `#` and `9` only
    ("#", MENU, None, call_keys.APPROVE),
    ("9", MENU, None, call_keys.DO_NOT_CALL),
    ("0", MENU, None, call_keys.WRONG_KEY),
    ("0#", MENU, None, call_keys.WRONG_KEY),
    ("00", MENU, None, call_keys.WRONG_KEY),
    ("*", MENU, None, call_keys.REPEAT),
    ("", MENU, None, call_keys.NO_INPUT),
    # a number-matched set-up call
    (NUMBER, MENU, NUMBER, call_keys.APPROVE),
    ("0#", MENU, NUMBER, call_keys.WRONG_KEY),
    ("0", MENU, NUMBER, call_keys.WRONG_KEY),
    ("9", MENU, NUMBER, call_keys.DO_NOT_CALL),
    # the fraud question is never asked on a set-up call: nothing answers it
    ("#", CONFIRM_FRAUD, None, call_keys.WRONG_KEY),
    ("#", CONFIRM_FRAUD, NUMBER, call_keys.WRONG_KEY),
    ("0", CONFIRM_FRAUD, None, call_keys.WRONG_KEY),
    ("", CONFIRM_FRAUD, None, call_keys.NO_INPUT),
])
def test_what_keys_mean_on_a_set_up_call(digits, ask, number_match, meaning):
    assert call_keys.meaning(digits, ask, number_match, 0, setting_up=True) == meaning


@pytest.mark.parametrize("digits, meaning", [("0", call_keys.ASK_FRAUD), ("0#", call_keys.REPORT_FRAUD)])
def test_zero_still_reports_fraud_on_a_sign_in_call(digits, meaning):
    assert call_keys.meaning(digits, MENU, None, 0, setting_up=False) == meaning


def test_star_on_a_set_up_call_still_repeats_a_few_times_only():
    assert call_keys.meaning("*", MENU, None, MAX_REPEATS, setting_up=True) == call_keys.WRONG_KEY


def set_up_call(live, phones) -> tuple[dict, str]:
    """Bob registers a new phone by call (a hash call: bob's role does not number-match) and answers."""
    auth = start_sign_in(live.api, "bob", expect="registration_required")
    response = live.api.post(f"/authentications/{auth['id']}/registrations", {
        "type": "phone", "number": NEW_PHONE, "kind": "mobile", "delivery": "voice"})
    assert response.status_code == 201, response.text
    phones.wait_idle()
    sid = phones.calls(to=NEW_PHONE)[-1].sid
    phones.answer(sid)
    return auth, sid


def fraud_audited(live) -> int:
    with live.app.extensions["mfa"].sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.event.in_(("fraud_key_pressed", "fraud_reported"))))


def bob_blocked(live) -> bool:
    with live.app.extensions["mfa"].sessions() as s:
        return s.scalars(select(User).where(User.username == "bob")).one().fraud_blocked_at is not None


def test_zero_on_a_set_up_call_is_a_wrong_key_and_blocks_nobody(live, phones, bob):
    auth, sid = set_up_call(live, phones)
    assert heard(phones, sid) == "greeting | press_hash_setup | not_mine"
    phones.press(sid, "0")
    phones.wait_idle()
    assert heard(phones, sid) == "greeting | press_hash_setup | not_mine | not_recognised | press_hash_setup | not_mine"
    assert state(live, auth)["status"] == "pending"
    assert not bob_blocked(live) and fraud_audited(live) == 0
    phones.press(sid, "0")  # the second wrong key: the normal ending, not a fraud report
    phones.wait_idle()
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "wrong_key")
    assert heard(phones, sid).endswith("wrong_key_goodbye")
    assert not bob_blocked(live) and fraud_audited(live) == 0
    assert live.api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 201


def test_zero_hash_on_a_set_up_call_reports_nothing(live, phones, bob):
    """A one-key question: `0` is the wrong key, and the `#` typed after it answers the reprompt
    ("press hash to set up this phone"), as after any wrong key."""
    auth, sid = set_up_call(live, phones)
    phones.press(sid, "0#")
    phones.wait_idle()
    assert heard(phones, sid).endswith("not_recognised | press_hash_setup | not_mine | setup_verified")
    assert "confirm_fraud" not in heard(phones, sid) and "fraud_recorded" not in heard(phones, sid)
    assert state(live, auth)["status"] == "approved"
    assert not bob_blocked(live) and fraud_audited(live) == 0


class TestANumberMatchedSetUpCall:
    """`0#` is one answer to a two-key question: a wrong key, and the call reprompts."""

    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "CALL_APPROVAL": "number"}

    def test_zero_hash_is_a_wrong_key_and_the_call_reprompts(self, live, phones, bob):
        auth, sid = set_up_call(live, phones)
        assert heard(phones, sid) == "greeting | enter_number | not_mine"
        phones.press(sid, "0#")
        phones.wait_idle()
        assert heard(phones, sid).endswith("not_mine | not_recognised | enter_number | not_mine")
        assert state(live, auth)["status"] == "pending"
        assert not bob_blocked(live) and fraud_audited(live) == 0
        assert live.api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 201


def test_a_welsh_set_up_call_says_it_sets_up_this_phone(live, phones, bob):
    from voice_prompts import catalogue

    auth = start_sign_in(live.api, "bob", expect="registration_required")
    response = live.api.post(f"/authentications/{auth['id']}/registrations", {
        "type": "phone", "number": NEW_PHONE, "kind": "mobile", "delivery": "voice", "language": "cy-GB"})
    assert response.status_code == 201, response.text
    phones.wait_idle()
    sid = phones.calls(to=NEW_PHONE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    plays = [e[1] for e in phones.call(sid).transcript if e[0] == "play"]
    assert any("/voice-prompts/cy-GB/" in url and url.endswith("/press_hash_setup.wav") for url in plays)
    assert plays[-1].startswith(f"{live.url}/voice-prompts/cy-GB/") and plays[-1].endswith("/setup_verified.wav")
    # "set up this phone", not "finish" (the sign-in prompt's words), and the farewell says so too
    assert catalogue.text("press_hash_setup", "cy-GB", "") == "Pwyswch hash i osod y ffôn hwn."
    assert "Mae'r ffôn hwn wedi'i osod." in catalogue.text("setup_verified", "cy-GB", "")
