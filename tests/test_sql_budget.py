"""A fixed SQL budget for each hot request, so a later change cannot quietly add queries.

Statements are counted on the app's own engine (before_cursor_execute), on SQLite and on
PostgreSQL alike. When a change needs another statement on one of these paths, raise its
budget here in the same commit and say why; when a change saves one, lower it.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import event

from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.helpers import pyotp_code, sign_webhook
from tests.test_sms import MOBILE, register_mobile
from tests.test_totp_signin import enrol_app, sign_in
from tests.test_voice_calls import alice, ring, start  # noqa: F401  (alice is a fixture)

# Statements per request. The comments list them, so a reader can see what one buys.
BUDGET = {
    # api key; the sign-in with its person (one join); the person's methods; the TOTP step
    # compare-and-set; finish (status); audit insert. (No challenge query: nothing is pending.)
    "totp_check": 6,
    # the challenge with its sign-in, person and method (one join); the call step
    "voice_answer": 2,
    # the challenge with its context; claim; finish (status, end its challenges); audit insert
    "voice_keys_hash": 5,
    # a delivered text changes nothing, so it reads nothing
    "sms_status_delivered": 0,
    # the challenge with its context; fail it; finish (status, end its challenges); audit insert
    "sms_status_undelivered": 5,
}


class StatementCounter:
    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, _conn, _cursor, statement, _params, _context, _executemany):
        self.statements.append(" ".join(statement.split())[:160])

    def report(self) -> str:
        return "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(self.statements))


@contextmanager
def counting(app):
    engine = app.extensions["mfa"].engine
    counter = StatementCounter()
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


def assert_within_budget(name: str, counter: StatementCounter) -> None:
    used = len(counter.statements)
    assert used <= BUDGET[name], f"{name} used {used} SQL statements, budget {BUDGET[name]}:\n{counter.report()}"


def post_webhook(live, path: str, params: dict) -> requests.Response:
    url = live.url + path
    params = {"AccountSid": TEST_ACCOUNT_SID, **params}
    return requests.post(url, data=params, headers=sign_webhook(TEST_AUTH_TOKEN, url, params), timeout=10)


@pytest.fixture
def ringing_call(live, phones, alice):  # noqa: F811
    """A verification call placed and ringing, its set-up webhooks already answered."""
    auth = start(live)
    sid = ring(live, phones, auth)
    phones.wait_idle()
    challenge_id = phones.call(sid).params["Url"].split("challenge=")[1]
    return sid, challenge_id


def test_an_app_code_check_stays_within_its_sql_budget(app, api, bob, clock):
    secret = enrol_app(api, clock)
    auth = sign_in(api)
    with counting(app) as counter:
        response = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert response.json["status"] == "approved"
    assert_within_budget("totp_check", counter)


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
