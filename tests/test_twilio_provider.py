"""The Twilio provider over real HTTP against the stand-in: never two calls or texts for one
request, and the operator's own mistakes (token, account, sender, API URL) loud, not the person's."""
from __future__ import annotations

import logging
import socket
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY
from urllib3.exceptions import (ConnectTimeoutError, MaxRetryError, NameResolutionError, NewConnectionError,
                                ProtocolError)

from ivr.provider import TwilioProvider
from ivr.twilio_http import NotSent, never_sent
from mfa.errors import ProviderUnavailable
from mfa.telephony import DeliveryUnknown, TelephonyRejected
from tests.conftest import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN
from tests.fault_servers import free_port  # closed again after: nothing listens there
from tests.helpers import register_mobile, start_sign_in
from tests.personas import ALICE, MOBILE


def account_errors(code) -> float:
    return REGISTRY.get_sample_value("mfa_twilio_account_errors_total", {"code": str(code)}) or 0.0


class RecordingProvider(TwilioProvider):
    """The provider with its back-offs recorded in `sleeps` instead of slept."""

    def __init__(self, settings: Any) -> None:
        self.sleeps: list[float] = []
        super().__init__(settings, sleep=self.sleeps.append)


@pytest.fixture
def provider(standin_server):
    """The provider alone, pointed at the stand-in; `provider.sleeps` records its back-offs."""
    settings = SimpleNamespace(
        twilio_account_sid=TEST_ACCOUNT_SID, twilio_auth_token=TEST_AUTH_TOKEN,
        twilio_api_base_url=standin_server.url, twilio_from_number="+441632960000",
        twilio_messaging_service_sid=None, public_base_url=f"http://127.0.0.1:{free_port()}",
        public_host="127.0.0.1", service_name="Secure Sign-in", voice_machine_detection=False)
    return RecordingProvider(settings)


def ask_for_a_call(live):
    auth = start_sign_in(live.api, "alice")
    voice = next(m for m in auth["methods"] if m["type"] == "voice")
    return live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": voice["id"]})


# --- end to end: the person's answer and what reached the phone --------------------------------


def test_twilio_answering_500_after_creating_a_text_delivers_one_text_and_answers_503(live, phones, bob):
    phones.fail_after_next_requests(1, status=500)
    _, response = register_mobile(live, phones)
    phones.wait_idle()
    assert len(phones.messages(to=MOBILE)) == 1
    assert response.status_code == 503 and response.json()["error"] == "provider_unavailable"


def test_twilio_answering_500_after_placing_a_call_rings_once_and_answers_503(live, phones, alice):
    phones.fail_after_next_requests(1, status=500)
    response = ask_for_a_call(live)
    phones.wait_idle()
    assert len(phones.calls(to=ALICE)) == 1
    assert response.status_code == 503 and response.json()["error"] == "provider_unavailable"


@pytest.mark.parametrize("fault", ["garbled 200", "dropped connection"])
def test_a_broken_answer_after_sending_is_not_retried(live, phones, bob, fault):
    if fault == "garbled 200":
        phones.garble_next_answers(1, status=200)
    else:
        phones.drop_next_connections(1)
    _, response = register_mobile(live, phones)
    phones.wait_idle()
    assert len(phones.messages(to=MOBILE)) == 1
    assert response.status_code == 503 and response.json()["error"] == "provider_unavailable"


def test_429_then_success_sends_one_text(live, phones, bob):
    live.app.extensions["mfa"].services.telephony.sleep = lambda _s: None
    phones.fail_next_requests(1, status=429)
    _, response = register_mobile(live, phones)
    assert response.status_code == 201, response.text
    phones.wait_idle()
    assert len(phones.messages(to=MOBILE)) == 1


def test_nothing_listening_is_retried_then_503_and_nothing_is_sent(live, phones, bob):
    provider = live.app.extensions["mfa"].services.telephony
    sleeps: list[float] = []
    provider.sleep = sleeps.append
    provider.client.api.base_url = f"http://127.0.0.1:{free_port()}"
    _, response = register_mobile(live, phones)
    assert response.status_code == 503 and response.json()["error"] == "provider_unavailable"
    assert len(sleeps) == provider.attempts - 1  # every attempt made, backing off between them
    assert phones.messages() == []


@pytest.fixture
def rotated_token(app_config):
    """The app's TWILIO_AUTH_TOKEN no longer matches Twilio's (list it before `live`)."""
    app_config["TWILIO_AUTH_TOKEN"] = "rotated-" + TEST_AUTH_TOKEN


def test_a_401_from_twilio_is_503_an_error_line_naming_the_token_and_a_counter(rotated_token, live, phones, bob,
                                                                                caplog):
    before = account_errors(20003)
    caplog.set_level(logging.INFO)
    _, response = register_mobile(live, phones)
    assert response.status_code == 503 and response.json()["error"] == "provider_unavailable"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR and r.name == "mfa.telephony"]
    assert len(errors) == 1 and "TWILIO_AUTH_TOKEN" in errors[0] and "20003" in errors[0]
    assert "7400" not in errors[0] and "3456" not in errors[0]  # no part of the number
    assert account_errors(20003) == before + 1
    assert phones.messages() == []


# --- the provider alone --------------------------------------------------------------------------


def test_a_500_after_creating_is_delivery_unknown_and_sent_once(provider, phones):
    phones.fail_after_next_requests(1, status=500)
    with pytest.raises(DeliveryUnknown):
        provider.send_code_sms(MOBILE, "123456", "en-GB")
    assert len(phones.messages()) == 1 and provider.sleeps == []


def test_a_500_before_creating_is_not_retried_either(provider, phones):
    """Twilio's 500 does not say whether the text went: the provider cannot tell the two apart."""
    phones.fail_next_requests(1, status=500)
    with pytest.raises(DeliveryUnknown):
        provider.place_verification_call(ALICE, "c1")
    assert phones.calls() == [] and provider.sleeps == []


def test_a_dropped_connection_is_tried_once_only(provider, phones):
    phones.drop_next_connections(1)
    with pytest.raises(DeliveryUnknown):
        provider.place_verification_call(ALICE, "c1")
    assert len(phones.calls()) == 1 and provider.sleeps == []


def test_429_is_retried_with_back_off_until_the_budget_runs_out(provider, phones):
    phones.fail_next_requests(5, status=429)
    with pytest.raises(ProviderUnavailable) as raised:
        provider.send_code_sms(MOBILE, "123456", "en-GB")
    assert not isinstance(raised.value, DeliveryUnknown)  # certainly not sent
    assert provider.sleeps == [0.25, 0.75] and phones.messages() == []


@pytest.mark.parametrize("account, setting", [
    ("AC" + "0" * 32, "TWILIO_AUTH_TOKEN"),  # Twilio: 401 20003 (the SID is the user name)
])
def test_wrong_credentials_are_the_operators_error(provider, phones, caplog, account, setting):
    provider.client.username = account
    provider.client.auth = (account, TEST_AUTH_TOKEN)
    with caplog.at_level(logging.ERROR, "mfa.telephony"), pytest.raises(ProviderUnavailable):
        provider.send_code_sms(MOBILE, "123456", "en-GB")
    assert setting in caplog.text and phones.messages() == []


def test_an_unknown_account_in_the_path_names_the_account_sid(provider, phones, caplog):
    phones_account = provider.client.account_sid
    provider.client.account_sid = "AC" + "1" * 32  # credentials fine, the path names another account
    before = account_errors(20404)
    with caplog.at_level(logging.ERROR, "mfa.telephony"), pytest.raises(ProviderUnavailable):
        provider.send_code_sms(MOBILE, "123456", "en-GB")
    assert "TWILIO_ACCOUNT_SID" in caplog.text and account_errors(20404) == before + 1
    assert phones.messages() == [] and phones_account == TEST_ACCOUNT_SID


def test_a_sender_the_account_does_not_own_names_the_from_number_not_the_person(provider, phones, caplog):
    provider.from_number = "+15005550007"  # Twilio's magic From: 21606
    with caplog.at_level(logging.ERROR, "mfa.telephony"), pytest.raises(ProviderUnavailable) as raised:
        provider.send_code_sms(MOBILE, "123456", "en-GB")
    assert not isinstance(raised.value, TelephonyRejected)
    assert "TWILIO_FROM_NUMBER" in caplog.text and "21606" in caplog.text


def test_an_invalid_number_is_still_the_persons_422(provider, phones, caplog):
    phones.set_rest_error(MOBILE, 21211)
    with caplog.at_level(logging.INFO, "mfa.telephony"), pytest.raises(TelephonyRejected) as raised:
        provider.send_code_sms(MOBILE, "123456", "en-GB")
    assert raised.value.code == "invalid_number"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_non_json_error_page_names_the_api_base_url(provider, phones, caplog):
    phones.garble_next_answers(1, status=404)
    with caplog.at_level(logging.ERROR, "mfa.telephony"), pytest.raises(ProviderUnavailable) as raised:
        provider.send_code_sms(MOBILE, "123456", "en-GB")
    assert not isinstance(raised.value, DeliveryUnknown)
    assert "TWILIO_API_BASE_URL" in caplog.text


def test_ending_a_call_that_is_already_gone_is_quiet(provider, phones, caplog):
    with caplog.at_level(logging.INFO, "mfa.telephony"):
        provider.end_call("CA" + "9" * 32)  # Twilio: 404 20404 for that call
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_ending_a_call_ends_it(provider, phones):
    sid = provider.place_verification_call(ALICE, "c1")
    phones.wait_idle()
    provider.end_call(sid)
    phones.wait_idle()
    assert phones.call(sid).status == "canceled"


def test_neither_requests_nor_urllib3_retry_anything_by_themselves(provider):
    session = provider.client.http_client.session
    for prefix in ("https://api.twilio.com/", "http://127.0.0.1/"):
        retries = session.get_adapter(prefix).max_retries
        assert retries.total == 0 and retries.read is False and not retries.redirect


NO_POOL: Any = None  # urllib3's errors built by hand: no pool or connection behind them


@pytest.mark.parametrize("exc, sent", [
    (requests.exceptions.ConnectTimeout(MaxRetryError(NO_POOL, "/", ConnectTimeoutError())), False),
    (requests.exceptions.ConnectionError(MaxRetryError(NO_POOL, "/", NewConnectionError(NO_POOL, "refused"))), False),
    (requests.exceptions.ConnectionError(MaxRetryError(
        NO_POOL, "/", NameResolutionError("api.twilio.com", NO_POOL, socket.gaierror("dns")))), False),
    (requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())), True),
    (requests.exceptions.ReadTimeout("read timed out"), True),
    (requests.exceptions.ChunkedEncodingError("broken"), True),
    (requests.exceptions.SSLError("handshake"), True),  # not told apart from a failure mid-answer
])
def test_only_failures_before_the_connection_count_as_never_sent(exc, sent):
    assert never_sent(exc) is (not sent)


def test_an_unreachable_twilio_raises_not_sent_from_the_transport(provider):
    provider.client.api.base_url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NotSent):
        provider.client.http_client.request("GET", provider.client.api.base_url + "/")


def test_twilio_refusals_do_not_log_the_number_twilio_quotes(live, phones, bob, caplog):
    caplog.set_level(logging.DEBUG)
    phones.set_rest_error(MOBILE, 21211)
    auth = start_sign_in(live.api)
    refused = live.api.post(f"/authentications/{auth['id']}/registrations",
                            {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"})
    assert refused.status_code == 422 and refused.json()["error"] == "invalid_number"
    logged = [r.getMessage() for r in caplog.records]
    assert any("twilio refused" in m and "error 21211" in m for m in logged)
    assert not any("7400123456" in m for m in logged)
