"""REST refusals in Twilio's shape: configured and magic-number errors, outages, bad auth,
unknown resources and parameters. The real twilio SDK must see TwilioRestException(.code)."""

import json
from pathlib import Path

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from standin import validation
from tests.standin_helpers import (  # noqa: F401  (fixtures)
    ACCOUNT_SID, AUTH_TOKEN, CALLEE, CALLER, customer, network, place_call, standin, twilio,
)

# The form schemas of Twilio's OpenAPI description, extracted with its licence (docs/twilio/README.md).
OPENAPI = Path(__file__).resolve().parent / "data" / "twilio_request_forms.json"


def refusal(action) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as raised:
        action()
    return raised.value


def text(twilio, to=CALLEE, from_=CALLER):
    return twilio.messages.create(to=to, from_=from_, body="Your code is 123456")


@pytest.mark.parametrize("code", [21211, 21614, 21408, 21610, 21215])
def test_a_configured_rest_error_refuses_calls_and_texts_to_that_number(
        twilio, customer, network, code):
    network.set_rest_error(CALLEE, code)
    for action in (lambda: place_call(twilio, customer), lambda: text(twilio)):
        error = refusal(action)
        assert (error.status, error.code) == (400, code)
    assert network.calls() == [] and network.messages() == []
    network.set_rest_error(CALLEE, None)
    assert text(twilio).status == "queued"


@pytest.mark.parametrize("to, code", [
    ("+15005550001", 21211), ("+15005550002", 21612), ("+15005550003", 21408),
    ("+15005550004", 21610), ("+15005550009", 21614),
])
def test_twilios_magic_numbers_refuse_texts(twilio, to, code):
    assert refusal(lambda: text(twilio, to=to)).code == code


@pytest.mark.parametrize("from_, code", [
    ("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611),
])
def test_twilios_magic_sender_numbers_refuse_texts(twilio, from_, code):
    assert refusal(lambda: text(twilio, from_=from_)).code == code


@pytest.mark.parametrize("to, code", [
    ("+15005550001", 21217), ("+15005550002", 21214), ("+15005550003", 21215),
    ("+15005550004", 21216),
])
def test_twilios_magic_numbers_refuse_calls(twilio, customer, to, code):
    assert refusal(lambda: place_call(twilio, customer, to=to)).code == code


def test_error_bodies_have_twilios_shape(standin, network):
    network.set_rest_error(CALLEE, 21614)
    response = requests.post(f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
                             auth=(ACCOUNT_SID, AUTH_TOKEN),
                             data={"To": CALLEE, "From": CALLER, "Body": "hi"})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["code"] == 21614 and body["status"] == 400
    assert body["more_info"] == "https://www.twilio.com/docs/errors/21614"


@pytest.mark.parametrize("status, code", [(500, 20500), (503, 20503), (429, 20429)])
def test_fail_next_requests_answers_that_status_then_recovers(
        twilio, customer, network, status, code):
    network.fail_next_requests(2, status=status)
    for _ in range(2):
        error = refusal(lambda: text(twilio))
        assert (error.status, error.code) == (status, code)
    assert text(twilio).status == "queued"
    assert len(network.messages()) == 1


def test_a_wrong_auth_token_is_refused_with_20003(standin):
    client = Client(ACCOUNT_SID, "not-the-token")
    client.api.base_url = standin.url
    error = refusal(lambda: text(client))
    assert (error.status, error.code) == (401, 20003)


def test_an_unknown_account_in_the_path_is_not_found(standin):
    response = requests.post(f"{standin.url}/2010-04-01/Accounts/AC{'9' * 32}/Messages.json",
                             auth=(ACCOUNT_SID, AUTH_TOKEN),
                             data={"To": CALLEE, "From": CALLER, "Body": "hi"})
    assert (response.status_code, response.json()["code"]) == (404, 20404)


def test_an_unknown_call_or_message_is_not_found(twilio):
    assert refusal(lambda: twilio.calls("CA" + "0" * 32).fetch()).code == 20404
    assert refusal(lambda: twilio.calls("CA" + "0" * 32).update(status="completed")).code \
        == 20404
    assert refusal(lambda: twilio.messages("SM" + "0" * 32).fetch()).code == 20404


def test_an_unknown_parameter_is_rejected(standin, network):
    response = requests.post(f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
                             auth=(ACCOUNT_SID, AUTH_TOKEN),
                             data={"To": CALLEE, "From": CALLER, "Url": "http://app/answer",
                                   "StatusCallbackEvents": "completed"})
    assert response.status_code == 400
    assert "StatusCallbackEvents" in response.json()["message"]
    assert network.calls() == []


@pytest.mark.parametrize("options, code", [
    ({"to": "07700900123"}, 21211),
    ({"url": None, "twiml": None}, 21205),
    ({"url": "ftp://app/answer"}, 21205),
    ({"send_digits": "12x"}, 21206),
    ({"status_callback_event": ["answered", "hungup"]}, 21626),
    ({"machine_detection": "Always"}, 20001),
    ({"async_amd": "maybe"}, 20001),
    ({"async_amd_status_callback": "ftp://app/amd"}, 21609),
    ({"async_amd_status_callback_method": "PUT"}, 20001),
])
def test_invalid_call_requests_are_refused_like_twilio_does(twilio, customer, options, code):
    arguments = {"to": CALLEE, "from_": CALLER, "url": customer.url("/answer")} | options
    arguments = {name: value for name, value in arguments.items() if value is not None}
    assert refusal(lambda: twilio.calls.create(**arguments)).code == code


@pytest.mark.parametrize("path, accepted", [
    ("/2010-04-01/Accounts/{AccountSid}/Calls.json", validation.CREATE_CALL),
    ("/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", validation.UPDATE_CALL),
    ("/2010-04-01/Accounts/{AccountSid}/Messages.json", validation.CREATE_MESSAGE),
])
def test_accepted_parameters_are_exactly_those_in_twilios_openapi(path, accepted):
    spec = json.loads(OPENAPI.read_text())
    form = spec["paths"][path]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"]["schema"]["properties"]
    assert set(form) == set(accepted)


def post_text(standin):
    return requests.post(f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
                         auth=(ACCOUNT_SID, AUTH_TOKEN), data={"To": CALLEE, "From": CALLER, "Body": "hi"},
                         timeout=5)


@pytest.mark.parametrize("status, code", [(500, 20500), (503, 20503)])
def test_fail_after_next_requests_delivers_and_still_answers_the_error(standin, network, status, code):
    network.fail_after_next_requests(1, status=status)
    response = post_text(standin)
    assert (response.status_code, response.json()["code"]) == (status, code)
    network.wait_idle()
    [message] = network.messages()
    assert message.status == "delivered"
    assert post_text(standin).status_code == 201  # then recovers


def test_garble_next_answers_delivers_and_answers_something_that_is_not_json(standin, network):
    network.garble_next_answers(1, status=200)
    response = post_text(standin)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()
    network.wait_idle()
    assert [m.status for m in network.messages()] == ["delivered"]


def test_drop_next_connections_delivers_then_closes_the_connection_unanswered(standin, network):
    network.drop_next_connections(1)
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        post_text(standin)
    assert "Remote end closed connection without response" in str(raised.value) or \
        "Connection aborted" in str(raised.value)
    network.wait_idle()
    assert [m.status for m in network.messages()] == ["delivered"]
    assert post_text(standin).status_code == 201


def test_faults_are_forgotten_on_reset(standin, network):
    network.fail_after_next_requests(1)
    network.drop_next_connections(1)
    network.reset()
    assert post_text(standin).status_code == 201
