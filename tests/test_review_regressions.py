"""Defects found in review, each pinned by a test that failed before its fix."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from app import create_app
from models import User
from settings import SettingsError
from tests.conftest import PASSWORD
from tests.helpers import add_phone, pyotp_code, sign_webhook
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.test_totp_signin import enrol_app

MOBILE = "+447400123456"


def open_sign_in(live, username="bob"):
    return live.api.post("/authentications", {"username": username, "password": PASSWORD}).json()


def voice_id(auth):
    return next(m["id"] for m in auth["methods"] if m["type"] == "voice")


def test_after_a_fraud_report_no_other_open_sign_in_can_ring_or_approve(live, phones, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    first, second = open_sign_in(live), open_sign_in(live)
    live.api.post(f"/authentications/{first['id']}/challenges", {"method_id": voice_id(first)})
    phones.wait_idle()
    sid = phones.calls(to=MOBILE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "0#")
    phones.wait_idle()
    other = live.api.get(f"/authentications/{second['id']}").json()
    assert other["status"] == "locked"
    clock.advance(30)
    again = live.api.post(f"/authentications/{second['id']}/challenges", {"method_id": voice_id(second)})
    assert again.status_code in (409, 423)
    assert len(phones.calls(to=MOBILE)) == 1


def test_a_call_ringing_for_another_sign_in_is_ended_by_a_fraud_report(live, phones, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    first, second = open_sign_in(live), open_sign_in(live)
    live.api.post(f"/authentications/{second['id']}/challenges", {"method_id": voice_id(second)})
    live.api.post(f"/authentications/{first['id']}/challenges", {"method_id": voice_id(first)})
    phones.wait_idle()
    ringing_second, reporting = phones.calls(to=MOBILE)
    phones.answer(reporting.sid)
    phones.press(reporting.sid, "0#")
    phones.wait_idle()
    assert phones.call(ringing_second.sid).status in ("canceled", "completed")


def test_a_repeated_no_input_webhook_replays_the_reprompt_instead_of_denying(live, phones, run, bob):
    import requests

    add_phone(run, bob, MOBILE, types=("voice", "sms"))
    auth = open_sign_in(live)
    live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": voice_id(auth)})
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


def test_texts_to_one_number_are_capped_across_sign_ins(live, phones, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    statuses = []
    for _ in range(11):
        auth = open_sign_in(live)
        sms = next(m["id"] for m in auth["methods"] if m["type"] == "sms")
        statuses.append(live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": sms}).status_code)
        clock.advance(1)
    assert statuses == [201] * 10 + [429]
    clock.advance(hours=1)
    auth = open_sign_in(live)
    sms = next(m["id"] for m in auth["methods"] if m["type"] == "sms")
    assert live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": sms}).status_code == 201


def test_registration_texts_to_many_numbers_are_capped_per_person(live, phones, bob, clock):
    codes = []
    for n in range(16):
        auth = open_sign_in(live)
        codes.append(live.api.post(f"/authentications/{auth['id']}/registrations", {
            "type": "phone", "number": f"+4474001234{n:02d}", "kind": "mobile", "delivery": "sms"}).status_code)
    assert codes == [201] * 15 + [429]


def test_twilio_refusals_do_not_log_the_number_twilio_quotes(live, phones, bob, caplog):
    caplog.set_level(logging.DEBUG)
    phones.set_rest_error(MOBILE, 21211)
    auth = open_sign_in(live)
    refused = live.api.post(f"/authentications/{auth['id']}/registrations",
                            {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"})
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_number"
    logged = [r.getMessage() for r in caplog.records]
    assert any("twilio refused" in m and "error 21211" in m for m in logged)
    assert not any("7400123456" in m for m in logged)


def test_a_second_registering_sign_in_cannot_replace_a_phone_registered_meanwhile(live, phones, bob):
    import re

    first, second = open_sign_in(live), open_sign_in(live)
    live.api.post(f"/authentications/{first['id']}/registrations",
                  {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"})
    phones.wait_idle()
    code = re.search(r"#(\d{6})$", phones.messages(to=MOBILE)[-1].body).group(1)
    assert live.api.post(f"/authentications/{first['id']}/checks", {"code": code}).json()["status"] == "approved"
    late = live.api.post(f"/authentications/{second['id']}/registrations",
                         {"type": "phone", "number": "+447400999888", "kind": "mobile", "delivery": "sms"})
    assert late.status_code == 409


def test_an_app_code_still_works_after_a_call_was_not_answered(live, phones, run, bob, clock):
    secret = enrol_app(_Adapter(live), clock)
    add_phone(run, bob, MOBILE, types=("voice",))
    phones.set_behaviour(MOBILE, "no-answer")
    auth = open_sign_in(live)
    live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": voice_id(auth)})
    phones.wait_idle()
    assert live.api.get(f"/authentications/{auth['id']}").json()["reason"] == "no_answer"
    done = live.api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert done.status_code == 200 and done.json()["status"] == "approved"


class _Adapter:
    """Lets helpers written for the test client drive the live server."""

    def __init__(self, live):
        self.live = live

    def post(self, path, json=None):
        response = self.live.api.post(path, json)
        response.json = response.json()  # the test client exposes .json as a property
        return response


def test_a_landline_registered_as_the_authentication_phone_gets_no_text_method(live, phones, bob):
    auth = open_sign_in(live)
    live.api.post(f"/authentications/{auth['id']}/registrations",
                  {"type": "phone", "number": "0113 496 0123", "kind": "mobile", "delivery": "voice"})
    phones.wait_idle()
    sid = phones.calls(to="+441134960123")[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.lapse(sid)
    phones.wait_idle()
    assert [m["type"] for m in live.api.get(f"/authentications/{auth['id']}").json()["methods"]] == ["voice"]


def test_a_refused_registration_leaves_the_call_language_alone(live, phones, bob):
    phones.set_rest_error(MOBILE, 21211)
    auth = open_sign_in(live)
    refused = live.api.post(f"/authentications/{auth['id']}/registrations", {
        "type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "voice", "language": "cy-GB"})
    assert refused.status_code == 422
    with live.app.extensions["mfa"].sessions() as s:
        assert s.scalars(select(User).where(User.username == "bob")).one().language == "en-GB"


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "é", "１２３４５６", "12 34 56x"])
def test_codes_that_are_not_ascii_digits_are_wrong_codes_not_crashes(api, bob, clock, code):
    enrol_app(api, clock)
    auth = api.post("/authentications", {"username": "bob", "password": PASSWORD}).json
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert response.status_code == 400 and response.json["error"] == "invalid_code"


@pytest.mark.parametrize("body", [
    {"username": "\ud800", "password": PASSWORD},
    {"username": "bob", "password": "\ud800" * 12},
    {"username": "bob\x00", "password": PASSWORD},
])
def test_text_a_database_cannot_store_gets_400(api, bob, body):
    response = api.client.post("/api/v1/authentications", data=_json(body), content_type="application/json",
                               headers=api._headers())
    assert response.status_code == 400 and response.json["error"] == "bad_request"


def test_app_password_checks_with_unstorable_text_get_400(api, bob):
    response = api.client.post("/api/v1/app-passwords/verify", data=_json({"username": "bob\x00", "app_password": "x"}),
                               content_type="application/json", headers=api._headers())
    assert response.status_code == 400


@pytest.mark.parametrize("auth_id", ["a%00b", "A" * 32, "0" * 31])
def test_malformed_authentication_ids_are_unknown(api, auth_id):
    assert api.get(f"/authentications/{auth_id}").status_code == 404
    assert api.post(f"/authentications/{auth_id}/checks", {"code": "123456"}).status_code == 404


def _json(body) -> str:
    import json

    return json.dumps(body)  # ensure_ascii keeps lone surrogates as \\ud800 escapes


def test_cli_database_errors_are_one_line(app_config, tmp_path):
    app = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    result = app.test_cli_runner().invoke(args=["users", "show", "bob"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "db upgrade" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_postgres_urls_in_the_heroku_style_are_accepted(app_config):
    app = create_app({**app_config, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"})
    assert app.extensions["mfa"].settings.database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "nonsense://x"])
def test_unsupported_databases_stop_start_up_naming_database_url(app_config, url):
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        create_app({**app_config, "DATABASE_URL": url})



