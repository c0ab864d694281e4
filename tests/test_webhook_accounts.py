"""Webhooks belong to one Twilio account, the development stand-in's token is made per instance,
and an early status callback waits through the app's injectable sleep, not time.sleep."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select, update

from models import Authentication, Challenge
from settings import SIMULATOR_ACCOUNT_SID, load
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.helpers import register_mobile, ring, sign_webhook, start_sign_in, state
from tests.fault_servers import free_port

ROOT = Path(__file__).resolve().parents[1]
WEBHOOKS = ["/twilio/voice/answer", "/twilio/voice/keys", "/twilio/voice/no-input", "/twilio/voice/status",
            "/twilio/sms/status"]


def snapshot(live):
    with live.app.extensions["mfa"].sessions() as s:
        rows = [tuple(getattr(r, c.key) for c in Challenge.__table__.columns)
                for r in s.scalars(select(Challenge).order_by(Challenge.id))]
        rows += [tuple(getattr(r, c.key) for c in Authentication.__table__.columns)
                 for r in s.scalars(select(Authentication).order_by(Authentication.id))]
        return rows


def post(url, params, token=TEST_AUTH_TOKEN):
    return requests.post(url, data=params, headers=sign_webhook(token, url, params), timeout=10)


@pytest.mark.parametrize("path", WEBHOOKS)
@pytest.mark.parametrize("account", ["AC" + "1" * 32, "", None])
def test_a_validly_signed_webhook_for_another_account_is_refused_and_changes_nothing(waits, live, phones,
                                                                                     alice, path, account):
    auth = start_sign_in(live.api, "alice")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    challenge_id = phones.call(sid).params["Url"].split("challenge=")[1]
    before = snapshot(live)
    params = {"CallSid": sid, "Digits": "#", "CallStatus": "busy", "MessageSid": "SMx",
              "MessageStatus": "failed", "ErrorCode": "30003"}
    if account is not None:
        params["AccountSid"] = account
    response = post(f"{live.url}{path}?challenge={challenge_id}&turn=0", params)
    assert response.status_code == 403
    assert snapshot(live) == before and state(live, auth)["status"] == "pending"
    # The same request naming our account goes through (so it was the account that was refused).
    again = post(f"{live.url}{path}?challenge={challenge_id}&turn=0", {**params, "AccountSid": TEST_ACCOUNT_SID})
    assert again.status_code in (200, 204)


def test_a_text_status_for_another_account_is_refused(live, phones, bob):
    auth, _ = register_mobile(live, phones)
    phones.wait_idle()
    message_sid = phones.messages()[-1].sid
    before = snapshot(live)
    params = {"AccountSid": "AC" + "2" * 32, "MessageSid": message_sid, "MessageStatus": "undelivered",
              "ErrorCode": "30003"}
    assert post(f"{live.url}/twilio/sms/status", params).status_code == 403
    assert snapshot(live) == before


def test_the_stand_in_names_the_account_on_every_webhook_it_makes(live, phones, alice):
    """A whole call (answer, keys, status callbacks) and a text's callbacks, all accepted."""
    auth = start_sign_in(live.api, "alice")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.lapse(sid)  # no input: the <Redirect> to no-input
    phones.press(sid, "#")
    phones.wait_idle()
    call = phones.call(sid)
    assert state(live, auth)["status"] == "approved"
    assert not call.events("error")
    assert call.callbacks and all(status == 204 for _, status in call.callbacks)
    assert {e[0] for e in call.transcript} >= {"no-input", "redirect", "action"}


# --- the early status callback waits through Runtime.sleep ---------------------------------------


@pytest.fixture
def waits(app_config):
    """What request threads were asked to wait; `waits.then` runs during the first wait."""

    class Waits(list):
        then = None

        def __call__(self, seconds):
            self.append(seconds)
            if self.then:
                self.then()
                self.then = None

    recorder = Waits()
    app_config["SLEEP"] = recorder  # list before `live`
    return recorder


def test_a_failure_report_that_overtakes_the_commit_is_applied_once_the_row_appears(waits, live, phones, bob):
    auth, _ = register_mobile(live, phones)
    phones.wait_idle()
    sessions = live.app.extensions["mfa"].sessions

    def set_sid(value):
        with sessions() as s:
            s.execute(update(Challenge).values(provider_sid=value))
            s.commit()

    set_sid("SMnotyet")  # as if the sending request had not committed the Sid yet
    waits.then = lambda: set_sid("SMlater")  # ... and commits while the callback waits
    started = time.monotonic()
    response = post(f"{live.url}/twilio/sms/status",
                    {"AccountSid": TEST_ACCOUNT_SID, "MessageSid": "SMlater", "MessageStatus": "failed"})
    assert response.status_code == 204
    assert waits == [0.2] and time.monotonic() - started < 1.5
    assert (state(live, auth)["status"], state(live, auth)["reason"]) == ("denied", "delivery_failed")


def test_a_report_for_a_text_that_never_appears_gives_up_without_really_waiting(waits, live, phones):
    started = time.monotonic()
    response = post(f"{live.url}/twilio/sms/status",
                    {"AccountSid": TEST_ACCOUNT_SID, "MessageSid": "SM" + "4" * 32, "MessageStatus": "failed"})
    assert response.status_code == 204
    assert len(waits) == 9 and time.monotonic() - started < 1.5  # 10 tries, 9 waits, none real


# --- the development stand-in's token ------------------------------------------------------------


def test_the_development_token_is_made_once_per_instance_folder(tmp_path):
    environ = {"SECRET_KEY": "k", "MFA_ENV": "development"}
    first = load(environ, tmp_path / "one")
    assert load(environ, tmp_path / "one").twilio_auth_token == first.twilio_auth_token
    other = load(environ, tmp_path / "two").twilio_auth_token
    assert len(first.twilio_auth_token) >= 32 and other != first.twilio_auth_token
    assert (tmp_path / "one" / "twilio_auth_token").read_text() == first.twilio_auth_token
    assert (tmp_path / "one" / "twilio_auth_token").stat().st_mode & 0o777 == 0o600
    assert first.twilio_account_sid == SIMULATOR_ACCOUNT_SID
    assert load({**environ, "TWILIO_AUTH_TOKEN": "given"}, tmp_path / "three").twilio_auth_token == "given"


def test_no_auth_token_is_written_in_the_source():
    import settings

    assert not hasattr(settings, "SIMULATOR_AUTH_TOKEN")
    assert "simulator-auth-token" not in (ROOT / "settings.py").read_text()


def test_the_dev_server_gives_its_stand_in_the_instance_token(tmp_path):
    from devserver import start_standin

    port = free_port()
    settings = load({"SECRET_KEY": "k", "MFA_ENV": "development",
                     "TWILIO_API_BASE_URL": f"http://127.0.0.1:{port}"}, tmp_path)
    server = start_standin(settings, tmp_path)
    try:
        assert server.network.auth_token == settings.twilio_auth_token
    finally:
        server.stop()


def test_python_m_ivr_standin_reads_the_token_from_the_instance_folder(tmp_path):
    token = load({"SECRET_KEY": "k", "MFA_ENV": "development"}, tmp_path).twilio_auth_token
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    process = subprocess.Popen([sys.executable, "-m", "standin", "--port", str(port), "--instance", str(tmp_path)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/2010-04-01/Accounts/{SIMULATOR_ACCOUNT_SID}/Calls/CA{'0' * 32}.json"
        for _ in range(100):
            try:
                right = requests.get(url, auth=(SIMULATOR_ACCOUNT_SID, token), timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.05)  # the child process is starting (test harness, not a request thread)
        else:
            pytest.fail(f"the stand-in did not start: {process.stdout.read().decode() if process.stdout else ''}")
        wrong = requests.get(url, auth=(SIMULATOR_ACCOUNT_SID, "not-it"), timeout=2)
        assert (right.status_code, wrong.status_code) == (404, 401)
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout:
            process.stdout.close()
