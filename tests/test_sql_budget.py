"""A fixed SQL budget for each hot request, so a later change cannot quietly add queries.

Statements are counted on the app's own engine (before_cursor_execute), on SQLite and on
PostgreSQL alike. When a change needs another statement on one of these paths, raise its
budget here in the same commit and say why; when a change saves one, lower it.
"""
from __future__ import annotations

import pytest
import requests

from models import Challenge

from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.helpers import enrol_app, pyotp_code, register_mobile, ring, sign_webhook, start_sign_in
from tests.personas import MOBILE
from tests.sql_counting import StatementCounter, counting

# Statements per request. The comments list them, so a reader can see what one buys. The hot
# requests (docs/performance.md: a poll, a TOTP check, the voice webhooks, status callbacks)
# stay within 5 (4 until smart lockout: an approval also records its source as familiar to the
# person, one upsert, mfa/lockout.py); only the rare failure callbacks below take more.
HOT_LIMIT = 5
BUDGET = {
    # the sign-in with its person and their methods (one join; the API key is remembered)
    "poll": 1,
    # the sign-in with its person and methods (one join); the TOTP step compare-and-set;
    # the familiar source upsert (smart lockout); finish (status); audit insert. (No challenge
    # query: nothing is pending.)
    "totp_check": 5,
    # the challenge with its sign-in, person and method (one join); the call step
    "voice_answer": 2,
    # the challenge with its context; claim it and end the sign-in's other pending challenges
    # (one statement); the familiar source upsert (smart lockout); finish (status); audit insert
    "voice_keys_hash": 5,
    # the call's last callback, after # approved it: the challenge with its context, nothing to change
    "voice_status_completed": 1,
    # hung up before a key (denies): the challenge with its context; claim (ending the rest);
    # finish; audit insert
    "voice_status_hung_up": 4,
    # a delivered text reads nothing; one UPDATE notes that Twilio reported on it (mfa/unheard.py)
    "sms_status_delivered": 1,
    # a failure (rare): the challenge with its context; fail it; finish (status, end its
    # challenges); audit insert
    "sms_status_undelivered": 5,
}
HOT = ("poll", "totp_check", "voice_answer", "voice_keys_hash", "voice_status_completed", "voice_status_hung_up",
       "sms_status_delivered")


def assert_within_budget(name: str, counter: StatementCounter) -> None:
    used = len(counter.statements)
    assert used <= BUDGET[name], f"{name} used {used} SQL statements, budget {BUDGET[name]}:\n{counter.report()}"


def test_every_hot_request_is_budgeted_within_the_hot_limit():
    assert all(BUDGET[name] <= HOT_LIMIT for name in HOT), {name: BUDGET[name] for name in HOT}


def post_webhook(live, path: str, params: dict) -> requests.Response:
    url = live.url + path
    params = {"AccountSid": TEST_ACCOUNT_SID, **params}
    return requests.post(url, data=params, headers=sign_webhook(TEST_AUTH_TOKEN, url, params), timeout=10)


@pytest.fixture
def ringing_call(live, phones, alice):
    """A verification call placed and ringing, its set-up webhooks already answered."""
    auth = start_sign_in(live.api, "alice")
    sid = ring(live, phones, auth)
    phones.wait_idle()
    challenge_id = phones.call(sid).params["Url"].split("challenge=")[1]
    return sid, challenge_id


def test_an_app_code_check_stays_within_its_sql_budget(app, api, bob, clock):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    with counting(app) as counter:
        response = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert response.json["status"] == "approved"
    assert_within_budget("totp_check", counter)


def test_polling_a_sign_in_stays_within_its_sql_budget(app, api, alice):
    auth = start_sign_in(api, "alice")
    api.get(f"/authentications/{auth['id']}")  # the API key is remembered from here on
    with counting(app) as counter:
        response = api.get(f"/authentications/{auth['id']}")
    assert response.json["status"] == "mfa_required" and response.json["methods"]
    assert_within_budget("poll", counter)


def test_the_answer_webhook_stays_within_its_sql_budget(live, ringing_call):
    sid, challenge_id = ringing_call
    with counting(live.app) as counter:
        response = post_webhook(live, f"/twilio/voice/answer?challenge={challenge_id}",
                                {"CallSid": sid, "CallStatus": "in-progress"})
    assert "<Gather" in response.text
    assert_within_budget("voice_answer", counter)


def test_the_keys_webhook_approving_with_hash_stays_within_its_sql_budget(live, ringing_call):
    sid, challenge_id = ringing_call
    post_webhook(live, f"/twilio/voice/answer?challenge={challenge_id}", {"CallSid": sid})
    with counting(live.app) as counter:
        response = post_webhook(live, f"/twilio/voice/keys?challenge={challenge_id}",
                                {"CallSid": sid, "Digits": "#"})
    assert response.status_code == 200 and "<Hangup" in response.text
    assert_within_budget("voice_keys_hash", counter)


@pytest.mark.parametrize("keys, budget, expected", [("#", "voice_status_completed", "approved"),
                                                    (None, "voice_status_hung_up", "denied")])
def test_a_call_status_callback_stays_within_its_sql_budget(live, ringing_call, keys, budget, expected):
    sid, challenge_id = ringing_call
    post_webhook(live, f"/twilio/voice/answer?challenge={challenge_id}", {"CallSid": sid})
    if keys:
        post_webhook(live, f"/twilio/voice/keys?challenge={challenge_id}", {"CallSid": sid, "Digits": keys})
    with counting(live.app) as counter:
        response = post_webhook(live, f"/twilio/voice/status?challenge={challenge_id}",
                                {"CallSid": sid, "CallStatus": "completed"})
    assert response.status_code == 204
    assert_within_budget(budget, counter)
    with live.app.extensions["mfa"].sessions() as db:
        auth_id = db.get(Challenge, challenge_id).authentication_id
    assert live.api.get(f"/authentications/{auth_id}").json()["status"] == expected


@pytest.mark.parametrize("status, budget", [("delivered", "sms_status_delivered"),
                                            ("undelivered", "sms_status_undelivered")])
def test_an_sms_status_callback_stays_within_its_sql_budget(live, phones, bob, status, budget):
    auth, registered = register_mobile(live, phones)
    assert registered.status_code == 201
    phones.wait_idle()
    message_sid = phones.messages(to=MOBILE)[-1].sid
    with counting(live.app) as counter:
        response = post_webhook(live, "/twilio/sms/status", {"MessageSid": message_sid, "MessageStatus": status})
    assert response.status_code == 204
    assert_within_budget(budget, counter)
    expected = "denied" if status == "undelivered" else "pending"
    assert live.api.get(f"/authentications/{auth['id']}").json()["status"] == expected
