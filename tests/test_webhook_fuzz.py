"""Every Twilio webhook under random forms signed with the app's own token (Hypothesis).

Signed, so the requests get past the signature check and reach the code behind it. Whatever
the form says: never a 5xx; the voice webhooks always answer 200 with TwiML that parses; and a
form that does not name a real call (or text) of ours, for our account, changes no challenge
and no sign-in. Derandomized and capped, so it is the same quick run every time.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models import Authentication, Challenge
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.helpers import register_mobile, ring, sign_webhook, start_sign_in

VOICE = ["/twilio/voice/answer", "/twilio/voice/keys", "/twilio/voice/no-input"]
CALLBACKS = ["/twilio/voice/status", "/twilio/voice/amd", "/twilio/sms/status"]
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

short_text = st.text(max_size=24)


@pytest.fixture
def no_waiting(app_config):
    app_config["SLEEP"] = lambda _seconds: None  # early-callback retries: no real waits (list before live)


@pytest.fixture
def scene(no_waiting, live, phones, alice, bob):
    """A sign-in waiting on an answered call, and one waiting on a texted code."""
    auth = start_sign_in(live.api, "alice")
    call_sid = ring(live, phones, auth)
    phones.answer(call_sid)
    voice_challenge = phones.call(call_sid).params["Url"].split("challenge=")[1]
    register_mobile(live, phones)
    phones.wait_idle()
    message = phones.messages()[-1]
    with live.app.extensions["mfa"].sessions() as s:
        sms_challenge = s.scalar(select(Challenge.id).where(Challenge.provider_sid == message.sid))
    return {"live": live, "client": live.app.test_client(), "call_sid": call_sid, "message_sid": message.sid,
            "voice_challenge": voice_challenge, "sms_challenge": sms_challenge}


def snapshot(live):
    with live.app.extensions["mfa"].sessions() as s:
        return ([tuple(getattr(r, c.key) for c in Challenge.__table__.columns)
                 for r in s.scalars(select(Challenge).order_by(Challenge.id))],
                [tuple(getattr(r, c.key) for c in Authentication.__table__.columns)
                 for r in s.scalars(select(Authentication).order_by(Authentication.id))])


DROP = "@absent"  # a field left out


def weighted(*choices):
    """one_of over (weight, strategy) pairs: real ids often enough to reach the code behind them."""
    return st.one_of(*[strategy for weight, strategy in choices for _ in range(weight)])


def forms():
    """(query, extra fields, Twilio's fields), each real, plausible, random or absent.
    "@call" and the like stand for the scene's real ids (resolved when posting)."""
    account = weighted((3, st.just(TEST_ACCOUNT_SID)), (1, st.just("AC" + "7" * 32)), (1, short_text),
                       (1, st.just(DROP)))
    sid = weighted((3, st.just("@call")), (1, st.just("@message")), (1, st.just("CA" + "0" * 32)),
                   (1, short_text), (1, st.just(DROP)))
    message_sid = weighted((3, st.just("@message")), (1, st.just("@call")), (1, short_text), (1, st.just(DROP)))
    challenge = weighted((3, st.just("@voice")), (1, st.just("@sms")), (1, st.just("0" * 32)), (1, short_text),
                         (1, st.just(DROP)))
    turn = st.one_of(st.just(DROP), st.integers(-2, 2000).map(str), short_text)
    digits = st.one_of(st.sampled_from(["#", "0#", "", "1", "##", "*", "0", "#0", "9#", DROP]), short_text)
    call_status = st.one_of(st.sampled_from(["queued", "ringing", "in-progress", "completed", "busy", "failed",
                                             "no-answer", "canceled", DROP]), short_text)
    message_status = st.one_of(st.sampled_from(["sent", "delivered", "undelivered", "failed", DROP]), short_text)
    fields = st.fixed_dictionaries({
        "AccountSid": account, "CallSid": sid, "MessageSid": message_sid, "Digits": digits,
        "CallStatus": call_status, "MessageStatus": message_status,
    }, optional={
        "ErrorCode": st.one_of(st.integers(0, 99999).map(str), short_text),
        "AnsweredBy": st.one_of(st.sampled_from(["human", "machine_start", "machine_end_beep", "fax", "unknown"]),
                                short_text),
    })
    extra = st.dictionaries(short_text, short_text, max_size=3)
    query = st.fixed_dictionaries({"challenge": challenge, "turn": turn})
    return st.tuples(query, extra, fields)


def resolve(scene, values: dict) -> dict:
    real = {"@call": scene["call_sid"], "@message": scene["message_sid"], "@voice": scene["voice_challenge"],
            "@sms": scene["sms_challenge"]}
    return {k: real.get(v, v) for k, v in values.items() if v != DROP}


def post(scene, path, query, extra, fields):
    query = resolve(scene, query)
    form = {**extra, **resolve(scene, fields)}
    qs = urlencode(query)
    target = path + (f"?{qs}" if qs else "")
    headers = sign_webhook(TEST_AUTH_TOKEN, scene["live"].url + target, form)
    return scene["client"].post(target, data=form, headers=headers), query, form


def names_a_real_one(scene, path, query, form) -> bool:
    """Could this form legitimately change something? (Ours, and naming a real call or text.)"""
    if form.get("AccountSid") != TEST_ACCOUNT_SID:
        return False
    if path == "/twilio/sms/status":
        return form.get("MessageSid") == scene["message_sid"]
    return query.get("challenge") == scene["voice_challenge"] and form.get("CallSid") == scene["call_sid"]


def check(scene, path, query, extra, fields):
    before = snapshot(scene["live"])
    response, query, form = post(scene, path, query, extra, fields)
    assert response.status_code < 500, (path, query, form, response.status_code)
    ours = form.get("AccountSid") == TEST_ACCOUNT_SID
    assert (response.status_code == 403) is not ours, (path, query, form, response.status_code)
    if ours and path in VOICE:
        assert response.status_code == 200 and response.mimetype == "text/xml"
        assert ET.fromstring(response.get_data(as_text=True)).tag == "Response"
    elif ours:
        assert response.status_code in (200, 204)
    if not names_a_real_one(scene, path, query, form):
        assert snapshot(scene["live"]) == before, (path, query, form)
        return "ours" if ours else "other account"
    return "real"


def test_every_twilio_webhook_is_fuzzed(scene):
    routes = {r.rule for r in scene["live"].app.url_map.iter_rules() if r.rule.startswith("/twilio/")}
    assert routes == set(VOICE + CALLBACKS)


@pytest.mark.parametrize("path", VOICE + CALLBACKS)
def test_random_signed_forms_never_fail_and_change_nothing_unless_they_name_a_real_call(scene, path):
    seen = []

    @FUZZ
    @given(forms())
    def run(case):
        seen.append(check(scene, path, *case))

    run()
    # The run reached the code behind the checks, and sometimes named the real call or text.
    assert {"ours", "other account", "real"} <= set(seen), seen
