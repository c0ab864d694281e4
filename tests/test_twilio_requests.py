"""What the provider sends Twilio uses only parameters Twilio's own OpenAPI description lists."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import register_mobile, ring, start_sign_in

# The form schemas of Twilio's OpenAPI description, extracted with its licence (docs/twilio/README.md).
SPEC = Path(__file__).resolve().parent / "data" / "twilio_request_forms.json"
ACCOUNT = "/2010-04-01/Accounts/{AccountSid}"


@pytest.fixture(scope="module")
def spec():
    return json.loads(SPEC.read_text())


def form_schema(spec, path):
    body = spec["paths"][ACCOUNT + path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    return set(body["schema"]["properties"]), set(body["schema"].get("required", []))


def assert_allowed(spec, path, params):
    allowed, required = form_schema(spec, path)
    assert set(params) <= allowed, set(params) - allowed
    assert required <= set(params), required - set(params)


def test_texts_use_only_documented_parameters(spec, live, phones, bob):
    register_mobile(live, phones)
    phones.wait_idle()
    [message] = phones.messages()
    assert_allowed(spec, "/Messages.json", message.params)
    assert {"To", "From", "Body", "StatusCallback"} <= set(message.params)


def test_texts_through_a_messaging_service_send_its_sid_instead_of_from(spec, live, phones, bob):
    provider = live.app.extensions["mfa"].services.telephony
    provider.messaging_service_sid = "MG" + "1" * 32
    register_mobile(live, phones)
    phones.wait_idle()
    [message] = phones.messages()
    assert_allowed(spec, "/Messages.json", message.params)
    assert message.params["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in message.params


def test_calls_and_call_endings_use_only_documented_parameters(spec, live, phones, alice, clock):
    auth = start_sign_in(live.api, "alice")
    first = ring(live, phones, auth)
    clock.advance(30)
    ring(live, phones, auth)  # replaces the first: ends it through Calls/{Sid}.json
    phones.wait_idle()
    call = phones.call(first)
    assert_allowed(spec, "/Calls.json", call.params)
    update_allowed, _ = form_schema(spec, "/Calls/{Sid}.json")
    assert "Status" in update_allowed
    assert any(e[0] == "ended-by-api" for e in call.transcript)
