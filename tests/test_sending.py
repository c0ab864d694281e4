"""Reserve, call the provider, record: what each provider outcome leaves behind.

A fake provider (tests/fake_telephony.py) stands in for Twilio, so each outcome can be
forced: refused, unreachable, or "may have been received" (DeliveryUnknown). Webhooks are
signed like Twilio's and go through the app.
"""
from __future__ import annotations


import pytest
from sqlalchemy import select, text

from mfa import calls
from mfa.errors import ProviderUnavailable
from mfa.telephony import DeliveryUnknown, Refusal, TelephonyRejected
from mfa.unit_of_work import use_case
from models import AuditEvent, Authentication, Challenge, SendRecord
from tests.conftest import PASSWORD
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone, post_form, sign_webhook, start_sign_in

NUMBER = "+447400123456"


@pytest.fixture
def fake(runtime):
    provider = FakeTelephony()
    use_fake(runtime, provider)
    return provider


@pytest.fixture
def bob_phone(run, bob):
    """bob, an administrator with a verified mobile: {"sms": id, "voice": id}."""
    sms_id, voice_id = add_phone(run, bob, NUMBER, types=("sms", "voice"))
    return {"sms": sms_id, "voice": voice_id}


def challenges_of(runtime, auth_id) -> list[Challenge]:
    with runtime.sessions() as s:
        return list(s.scalars(select(Challenge).where(Challenge.authentication_id == auth_id)
                              .order_by(Challenge.created_at, Challenge.id)))


def status(api, auth_id) -> str:
    return api.get(f"/authentications/{auth_id}").json["status"]


def webhook(client, runtime, path: str, params: dict):
    """A voice webhook signed as Twilio signs it."""
    settings = runtime.settings
    params = {"AccountSid": settings.twilio_account_sid, **params}
    url = settings.public_base_url + path
    return client.post(path, data=params, headers=sign_webhook(settings.twilio_auth_token, url, params))


def press(client, runtime, challenge_id: str, call_sid: str | None, digits: str):
    webhook(client, runtime, f"/twilio/voice/answer?challenge={challenge_id}", {"CallSid": call_sid})
    return webhook(client, runtime, f"/twilio/voice/keys?challenge={challenge_id}&turn=0",
                   {"CallSid": call_sid, "Digits": digits})


def sends(runtime) -> int:
    with runtime.sessions() as s:
        return len(s.scalars(select(SendRecord)).all())


def test_a_refused_text_fails_its_challenge_and_leaves_the_sign_in_and_the_limits_as_they_were(
        api, runtime, fake, bob_phone):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    fake.fail = TelephonyRejected(Refusal.INVALID_NUMBER)
    refused = api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["sms"]})
    assert refused.status_code == 422 and refused.json["error"] == "invalid_number"
    [challenge] = challenges_of(runtime, auth_id)
    assert (challenge.status, challenge.reason) == ("failed", "invalid_number")
    assert status(api, auth_id) == "mfa_required" and sends(runtime) == 0
    fake.fail = None  # nothing went out, so no 30-second wait before trying again
    assert api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["sms"]}).status_code == 201


def test_an_unreachable_provider_fails_the_challenge_and_answers_503(api, runtime, fake, bob_phone):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    fake.fail = ProviderUnavailable()
    answer = api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]})
    assert answer.status_code == 503 and answer.json["error"] == "provider_unavailable"
    [challenge] = challenges_of(runtime, auth_id)
    assert (challenge.status, challenge.reason) == ("failed", "provider_unavailable")
    assert status(api, auth_id) == "mfa_required" and sends(runtime) == 0


def test_a_text_that_may_have_gone_out_is_unknown_and_its_code_still_works(api, runtime, fake, bob_phone):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    fake.fail = DeliveryUnknown()  # the provider got the request (the fake keeps the text) but said 500
    answer = api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["sms"]})
    assert answer.status_code == 503 and answer.json == {"error": "provider_unavailable",
                                                         "message": DeliveryUnknown.message}
    [challenge] = challenges_of(runtime, auth_id)
    assert challenge.status == "unknown" and status(api, auth_id) == "pending"
    assert sends(runtime) == 1  # it may have gone out: it counts against the limits
    code = fake.texts[-1][1]
    assert api.post(f"/authentications/{auth_id}/checks", {"code": code}).json["status"] == "approved"


def test_sending_again_after_an_unknown_text_supersedes_it(api, runtime, fake, bob_phone, clock):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    fake.fail = DeliveryUnknown()
    api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["sms"]})
    old_code = fake.texts[-1][1]
    fake.fail = None
    clock.advance(30)
    assert api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["sms"]}).status_code == 201
    new_code = fake.texts[-1][1]
    assert [c.status for c in challenges_of(runtime, auth_id)] == ["replaced", "pending"]
    if old_code != new_code:
        assert api.post(f"/authentications/{auth_id}/checks", {"code": old_code}).status_code == 400
    assert api.post(f"/authentications/{auth_id}/checks", {"code": new_code}).json["status"] == "approved"


def test_a_call_that_may_have_been_placed_is_adopted_by_its_first_webhook_and_hash_approves(
        api, client, runtime, fake, bob_phone):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    fake.fail = DeliveryUnknown()
    assert api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]}).status_code == 503
    challenge_id = fake.calls[-1][1]
    answered = webhook(client, runtime, f"/twilio/voice/answer?challenge={challenge_id}", {"CallSid": "CA" + "1" * 32})
    assert b"<Gather" in answered.data  # the prompt, not "this verification has ended"
    keys = webhook(client, runtime, f"/twilio/voice/keys?challenge={challenge_id}&turn=0",
                   {"CallSid": "CA" + "1" * 32, "Digits": "#"})
    assert keys.status_code == 200 and status(api, auth_id) == "approved"
    [challenge] = challenges_of(runtime, auth_id)
    assert (challenge.status, challenge.provider_sid) == ("approved", "CA" + "1" * 32)


def test_a_second_call_sid_for_an_adopted_challenge_is_not_recognised(api, client, runtime, fake, bob_phone):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    fake.fail = DeliveryUnknown()
    api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]})
    challenge_id = fake.calls[-1][1]
    webhook(client, runtime, f"/twilio/voice/answer?challenge={challenge_id}", {"CallSid": "CA" + "1" * 32})
    stranger = press(client, runtime, challenge_id, "CA" + "2" * 32, "#")
    assert b"<Hangup" in stranger.data and status(api, auth_id) == "pending"


def test_a_webhook_arriving_before_the_send_is_recorded_adopts_the_call(api, client, runtime, fake, bob_phone):
    """The provider rings and the phone answers before the record step commits."""
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    early: list[str] = []

    def answered_while_sending(what, sid):
        with runtime.sessions() as s, use_case(s):
            early.append(calls.answered(s, runtime.services, what[1], sid, None).outcome)

    fake.during = answered_while_sending
    assert api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]}).status_code == 201
    assert early == ["prompt"]
    challenge_id = fake.calls[-1][1]
    [challenge] = challenges_of(runtime, auth_id)
    assert challenge.status == "pending" and status(api, auth_id) == "pending"
    webhook(client, runtime, f"/twilio/voice/keys?challenge={challenge_id}&turn=0",
            {"CallSid": challenge.provider_sid, "Digits": "#"})
    assert status(api, auth_id) == "approved"


def test_an_older_call_answered_while_the_sign_in_waits_can_still_approve(
        api, client, runtime, fake, bob_phone, clock):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]})
    first = challenges_of(runtime, auth_id)[0]
    clock.advance(30)
    api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]})
    assert fake.ended == [first.provider_sid]  # hung up after the commit
    answered = webhook(client, runtime, f"/twilio/voice/answer?challenge={first.id}", {"CallSid": first.provider_sid})
    assert b"<Gather" in answered.data  # never "this verification has ended" while the sign-in waits
    keys = webhook(client, runtime, f"/twilio/voice/keys?challenge={first.id}&turn=0",
                   {"CallSid": first.provider_sid, "Digits": "#"})
    assert b"<Hangup" in keys.data and status(api, auth_id) == "approved"
    second = challenges_of(runtime, auth_id)[1]
    late = webhook(client, runtime, f"/twilio/voice/answer?challenge={second.id}", {"CallSid": second.provider_sid})
    assert b"<Gather" not in late.data  # the sign-in no longer waits: this one just ends


def test_an_older_call_answered_after_the_newer_one_went_unanswered_can_still_approve(
        api, client, runtime, fake, bob_phone, clock):
    auth_id = start_sign_in(api, expect="mfa_required")["id"]
    api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]})
    clock.advance(30)
    api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]})
    first, second = challenges_of(runtime, auth_id)
    webhook(client, runtime, f"/twilio/voice/status?challenge={second.id}",
            {"CallSid": second.provider_sid, "CallStatus": "no-answer"})
    assert api.get(f"/authentications/{auth_id}").json["reason"] == "no_answer"
    keys = press(client, runtime, first.id, first.provider_sid, "#")
    assert b"<Hangup" in keys.data and status(api, auth_id) == "approved"


def test_a_fraud_report_hangs_up_other_calls_only_after_its_commit(api, client, runtime, fake, bob_phone):
    reported, other = start_sign_in(api, expect="mfa_required")["id"], start_sign_in(api, expect="mfa_required")["id"]
    for auth_id in (other, reported):
        api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]})
    [ringing] = challenges_of(runtime, other)
    [answered] = challenges_of(runtime, reported)
    seen: list[str] = []

    def end_call(call_sid):  # what another connection sees while the call is being ended
        with runtime.engine.connect() as conn:
            seen.append(conn.execute(text("SELECT status FROM authentications WHERE id = :id"),
                                     {"id": other}).scalar())
        fake.ended.append(call_sid)

    fake.end_call = end_call
    press(client, runtime, answered.id, answered.provider_sid, "0#")
    assert fake.ended == [ringing.provider_sid] and seen == ["locked"]
    assert status(api, reported) == "fraud_reported"
    with runtime.sessions() as s:
        assert s.get(Authentication, other).reason == "fraud_reported"


# --- the pages ---------------------------------------------------------------------------------

def test_the_sign_in_page_shows_the_code_form_when_a_text_may_have_gone_out(client, runtime, fake, bob_phone):
    fake.fail = DeliveryUnknown()
    started = post_form(client, "/sign-in", {"username": "bob", "password": PASSWORD}, "/sign-in")
    assert started.status_code == 302 and started.headers["Location"].endswith("/verify")
    page = client.get("/verify").get_data(as_text=True)
    assert DeliveryUnknown.message in page and 'name="code"' in page
    post_form(client, "/verify/code", {"code": fake.texts[-1][1]}, "/verify")
    with runtime.sessions() as s:
        assert s.scalars(select(Authentication.status)).all() == ["approved"]


def test_the_registration_page_shows_the_code_form_when_a_text_may_have_gone_out(client, run, fake, bob):
    fake.fail = DeliveryUnknown()
    post_form(client, "/sign-in", {"username": "bob", "password": PASSWORD}, "/sign-in")
    sent = post_form(client, "/register/phone/mobile", {"number": "07400 123456", "delivery": "sms"},
                     "/register/phone/mobile")
    assert sent.status_code == 302 and sent.headers["Location"].endswith("/verify")
    page = client.get("/verify").get_data(as_text=True)
    assert DeliveryUnknown.message in page and 'name="code"' in page


def test_a_registration_finishing_while_another_is_sending_does_not_pull_its_row_away(api, runtime, fake, bob):
    """Two sign-ins of one person register at once: the later record step wins, neither crashes."""
    first, second = (start_sign_in(api)["id"] for _ in range(2))
    answers = {}

    def meanwhile(_what, _sid):
        fake.during = None
        answers["second"] = api.post(f"/authentications/{second}/registrations", {
            "type": "phone", "number": "07400 654321", "kind": "mobile", "delivery": "sms"}).status_code

    fake.during = meanwhile
    answers["first"] = api.post(f"/authentications/{first}/registrations", {
        "type": "phone", "number": "07400 123456", "kind": "mobile", "delivery": "sms"}).status_code
    assert answers == {"first": 201, "second": 201}
    code = next(c for to, c in fake.texts if to == NUMBER)
    assert api.post(f"/authentications/{first}/checks", {"code": code}).json["status"] == "approved"


def test_a_call_ended_busy_before_the_send_is_recorded_still_counts_as_started(api, runtime, fake, bob_phone):
    """A busy line can answer the status callback before the record step commits: the call did
    start, and the audit (and so the challenges counter) says so once, beside its busy ending."""
    auth_id = start_sign_in(api, expect="mfa_required")["id"]

    def busy_while_sending(what, sid):
        with runtime.sessions() as s, use_case(s):
            assert calls.status_changed(s, runtime.services, what[1], sid, "busy")

    fake.during = busy_while_sending
    assert api.post(f"/authentications/{auth_id}/challenges", {"method_id": bob_phone["voice"]}).status_code == 201
    [challenge] = challenges_of(runtime, auth_id)
    assert challenge.reason == "busy"
    with runtime.sessions() as s:
        events = s.scalars(select(AuditEvent.event).where(AuditEvent.event.in_(["challenge_started",
                                                                                 "challenge_failed"]))).all()
    assert sorted(events) == ["challenge_failed", "challenge_started"]
