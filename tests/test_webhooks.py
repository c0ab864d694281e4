"""Twilio's webhooks: signed or refused, repeatable without effect, always valid TwiML for calls."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import requests
from sqlalchemy import func, select

from ivr import twiml
from ivr.call_flow import CallUrls, steps_for
from ivr.webhook_urls import WebhookUrls
from mfa.calls import CallTurn
from models import AuditEvent
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.helpers import add_phone, method_id, register_mobile, ring, sign_webhook, start_sign_in, state
from tests.personas import MOBILE

# Verbs and attributes Twilio documents (NOTES.md §1), for what this server emits.
DOCUMENTED = {
    "Gather": {"input", "action", "method", "timeout", "finishOnKey", "numDigits", "actionOnEmptyResult", "language"},
    "Say": {"voice", "language", "loop"},
    "Play": {"loop", "digits"},
    "Pause": {"length"},
    "Redirect": {"method"},
    "Hangup": set(),
}
NESTABLE_IN_GATHER = {"Say", "Play", "Pause"}


def assert_documented_twiml(xml: str) -> ET.Element:
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    for verb in root:
        assert verb.tag in DOCUMENTED, verb.tag
        assert set(verb.attrib) <= DOCUMENTED[verb.tag], (verb.tag, verb.attrib)
        for child in verb:
            assert verb.tag == "Gather" and child.tag in NESTABLE_IN_GATHER, child.tag
            assert set(child.attrib) <= DOCUMENTED[child.tag]
    return root


def post_signed(url, params, token=TEST_AUTH_TOKEN, signature=None):
    params = {"AccountSid": TEST_ACCOUNT_SID, **params}  # Twilio names the account on every webhook
    headers = sign_webhook(token, url, params) if signature is None else {"X-Twilio-Signature": signature}
    return requests.post(url, data=params, headers=headers, timeout=10)


def audit_count(live, event, outcome=None):
    with live.app.extensions["mfa"].sessions() as s:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.event == event)
        if outcome:
            query = query.where(AuditEvent.outcome == outcome)
        return s.scalar(query)


@pytest.fixture
def answered_call(live, phones, alice):
    auth = start_sign_in(live.api, "alice")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    challenge_url = phones.call(sid).params["Url"]
    challenge_id = challenge_url.split("challenge=")[1]
    return auth, sid, challenge_id


@pytest.mark.parametrize("path", ["/twilio/voice/keys", "/twilio/voice/answer", "/twilio/voice/no-input",
                                  "/twilio/voice/status", "/twilio/voice/amd", "/twilio/sms/status"])
@pytest.mark.parametrize("signature", ["", "forged", "wrong-token"])
def test_unsigned_or_forged_webhooks_get_403_and_change_nothing(live, phones, answered_call, path, signature):
    auth, sid, challenge_id = answered_call
    url = f"{live.url}{path}?challenge={challenge_id}"
    params = {"CallSid": sid, "Digits": "#", "CallStatus": "busy", "AnsweredBy": "machine_end_beep",
              "MessageSid": "SMx", "MessageStatus": "failed"}
    if signature == "wrong-token":
        response = post_signed(url, params, token="not-the-auth-token")
    else:
        response = post_signed(url, params, signature=signature)
    assert response.status_code == 403
    assert state(live, auth)["status"] == "pending"


def test_a_signature_for_another_url_is_refused(live, phones, answered_call):
    auth, sid, challenge_id = answered_call
    url = f"{live.url}/twilio/voice/keys?challenge={challenge_id}"
    signed_for_other = sign_webhook(TEST_AUTH_TOKEN, "https://elsewhere.example/twilio/voice/keys",
                                    {"CallSid": sid, "Digits": "#"})
    response = requests.post(url, data={"CallSid": sid, "Digits": "#"}, headers=signed_for_other, timeout=10)
    assert response.status_code == 403
    assert state(live, auth)["status"] == "pending"


def test_a_repeated_keys_webhook_changes_nothing_twice_and_hears_the_same_ending(live, phones, answered_call):
    auth, sid, challenge_id = answered_call
    url = f"{live.url}/twilio/voice/keys?challenge={challenge_id}"
    first = post_signed(url, {"CallSid": sid, "Digits": "#"})
    again = post_signed(url, {"CallSid": sid, "Digits": "#"})
    assert first.status_code == again.status_code == 200
    assert first.text == again.text and "verified" in first.text
    assert audit_count(live, "sign_in", "approved") == 1
    late_status = post_signed(f"{live.url}/twilio/voice/status?challenge={challenge_id}",
                              {"CallSid": sid, "CallStatus": "completed"})
    assert late_status.status_code == 204
    assert state(live, auth)["status"] == "approved"


def test_a_fraud_report_repeated_blocks_once(live, phones, answered_call):
    auth, sid, challenge_id = answered_call
    url = f"{live.url}/twilio/voice/keys?challenge={challenge_id}"
    for _ in range(3):
        assert post_signed(url, {"CallSid": sid, "Digits": "0#"}).status_code == 200
    assert audit_count(live, "fraud_reported") == 1
    assert state(live, auth)["status"] == "fraud_reported"


def test_keys_for_a_call_of_another_challenge_are_ignored(live, phones, answered_call):
    auth, sid, challenge_id = answered_call
    response = post_signed(f"{live.url}/twilio/voice/keys?challenge={challenge_id}",
                           {"CallSid": "CAother", "Digits": "#"})
    assert response.status_code == 200 and "<Hangup />" in response.text
    assert state(live, auth)["status"] == "pending"


def test_webhooks_for_unknown_calls_answer_politely(live):
    answer = post_signed(f"{live.url}/twilio/voice/answer?challenge=nope", {"CallSid": "CA1"})
    assert answer.status_code == 200 and "<Hangup />" in answer.text
    assert_documented_twiml(answer.text)
    status = post_signed(f"{live.url}/twilio/voice/status?challenge=nope", {"CallSid": "CA1", "CallStatus": "busy"})
    assert status.status_code == 204
    sms = post_signed(f"{live.url}/twilio/sms/status", {"MessageSid": "SM1", "MessageStatus": "failed"})
    assert sms.status_code == 204


def test_a_voice_webhook_that_breaks_still_answers_goodbye_twiml(live, phones, answered_call, monkeypatch):
    from mfa import calls

    auth, sid, challenge_id = answered_call
    monkeypatch.setattr(calls, "keys_pressed", lambda *a, **k: 1 / 0)
    response = post_signed(f"{live.url}/twilio/voice/keys?challenge={challenge_id}", {"CallSid": sid, "Digits": "#"})
    assert response.status_code == 200
    root = assert_documented_twiml(response.text)
    assert [v.tag for v in root] == ["Play", "Hangup"]
    assert state(live, auth)["status"] == "pending"


def test_repeated_sms_failure_reports_deny_once(live, phones, bob):
    auth, _ = register_mobile(live, phones)
    phones.wait_idle()
    sid = phones.messages()[-1].sid
    for _ in range(2):
        undelivered = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
        assert post_signed(f"{live.url}/twilio/sms/status", undelivered).status_code == 204
    assert audit_count(live, "challenge_failed") == 1
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "delivery_failed")


@pytest.mark.parametrize("language", ["en-GB", "cy-GB"])
@pytest.mark.parametrize("service", ["Secure Sign-in", "Another Name"])  # the second forces <Say> for the greeting
@pytest.mark.parametrize("outcome", ["prompt", "reprompt_no_input", "reprompt_wrong_key", "reprompt_mismatch",
                                     "verified", "fraud_recorded", "do_not_call", "goodbye", "no_input_goodbye",
                                     "wrong_key_goodbye", "mismatch_goodbye", "hangup"])
@pytest.mark.parametrize("ask, approval, num_digits", [
    ("menu", "hash", "1"), ("menu", "number", "2"), ("fraud", "hash", "1"), ("fraud", "number", "1")])
def test_every_call_turn_renders_only_documented_twiml(outcome, language, service, ask, approval, num_digits):
    from voice_prompts import catalogue
    from voice_prompts.library import PromptLibrary

    voice = twiml.PromptVoice(PromptLibrary(service=service), catalogue, "https://mfa.example.org")
    turn = CallTurn(outcome, language, ask=ask, approval=approval)
    steps = steps_for(turn, CallUrls(WebhookUrls("https://mfa.example.org"), "c1", ask=ask))
    xml = twiml.render(steps, language, voice)
    root = assert_documented_twiml(xml)
    for element in root.iter():
        if element.tag in ("Play", "Redirect"):
            assert (element.text or "").startswith("https://mfa.example.org/")
        if element.tag == "Gather":
            assert element.attrib["action"].startswith("https://mfa.example.org/twilio/voice/keys")
            assert f"ask={ask}" in element.attrib["action"]
            assert element.attrib["finishOnKey"] == "" and element.attrib["numDigits"] == num_digits
        if element.tag == "Say":
            assert element.attrib["language"] == language


def test_recorded_prompts_are_served_cacheable_and_nothing_else_is(live):
    from voice_prompts.library import PromptLibrary

    recording = PromptLibrary().recording("greeting", "en-GB")
    assert recording is not None
    ok = requests.get(live.url + recording.url_path, timeout=10)  # /voice-prompts/en-GB/<hash>/greeting.wav
    assert ok.status_code == 200 and ok.headers["Content-Type"] == "audio/wav"
    assert "max-age=31536000" in ok.headers["Cache-Control"]
    for bad in ("/voice-prompts/en-GB/../../app.py", "/voice-prompts/xx/greeting.wav",
                "/voice-prompts/en-GB/manifest.json", "/voice-prompts/en-GB/0123456789ab/greeting.wav"):
        assert requests.get(live.url + bad, timeout=10).status_code == 404


def test_a_repeated_no_input_webhook_replays_the_reprompt_instead_of_denying(live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    auth = start_sign_in(live.api)
    live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    phones.wait_idle()
    call = phones.calls(to=MOBILE)[-1]
    phones.answer(call.sid)
    challenge = call.params["Url"].split("challenge=")[1]
    url = f"{live.url}/twilio/voice/no-input?challenge={challenge}&turn=0"
    params = {"AccountSid": TEST_ACCOUNT_SID, "CallSid": call.sid}
    replies = [requests.post(url, data=params, headers=sign_webhook(TEST_AUTH_TOKEN, url, params), timeout=10)
               for _ in range(2)]
    assert replies[0].text == replies[1].text and "<Gather" in replies[0].text
    assert live.api.get(f"/authentications/{auth['id']}").json()["status"] == "pending"
