"""Calls through the stand-in: the REST resource, webhooks as Twilio sends them, TwiML verbs."""

import re

import pytest
import requests
from twilio.request_validator import RequestValidator

from tests.standin_helpers import (  # noqa: F401  (fixtures)
    ACCOUNT_SID, AUTH_TOKEN, CALLEE, CALLER, WAV, answered_call, customer, network, standin,
    twilio, twiml,
)

RFC_2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def test_creating_a_call_returns_a_queued_call_resource(twilio, customer):
    call = twilio.calls.create(to=CALLEE, from_=CALLER, url=customer.url("/answer"))
    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert (call.status, call.to, call.direction) == ("queued", CALLEE, "outbound-api")
    assert call.account_sid == ACCOUNT_SID and call.api_version == "2010-04-01"
    assert call.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json"


def test_the_raw_call_resource_dates_are_rfc_2822(standin, customer):
    response = requests.post(
        f"{standin.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        data={"To": CALLEE, "From": CALLER, "Url": customer.url("/answer")})
    assert response.status_code == 201
    assert RFC_2822.match(response.json()["date_created"])


def test_answering_fetches_the_twiml_with_the_parameters_twilio_sends(
        twilio, customer, network):
    customer.serve("/answer", twiml("<Say>Hello</Say>"))
    sid = answered_call(twilio, customer, network)
    (request,) = customer.received("/answer")
    assert request.method == "POST"
    assert request.form == {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": sid,
        "CallStatus": "in-progress", "Called": CALLEE, "Caller": CALLER,
        "Direction": "outbound-api", "From": CALLER, "To": CALLEE,
    }
    assert request.headers.get("I-Twilio-Idempotency-Token")


def test_every_webhook_carries_a_valid_twilio_signature(twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action?step=1" numDigits="1">'
                                    "<Say>Press a key</Say></Gather>"))
    customer.serve("/action", twiml('<Redirect method="GET">/next?x=a+b</Redirect>'))
    customer.serve("/next", twiml("<Redirect>/last</Redirect>"))
    customer.serve("/last", twiml("<Hangup/>"))
    sid = answered_call(twilio, customer, network, status_callback=customer.url("/status"),
                        status_callback_event=["initiated", "ringing", "answered", "completed"])
    network.press(sid, "1")
    network.wait_idle()
    received = customer.received()
    assert [r.path for r in received] == [
        "/status", "/status", "/status", "/answer", "/action", "/next", "/last", "/status"]
    assert all(r.signature_valid and r.raw_signature_valid for r in received)


def test_a_signature_made_with_another_token_would_not_validate(twilio, customer, network):
    customer.serve("/answer", twiml("<Hangup/>"))
    answered_call(twilio, customer, network)
    (request,) = customer.received("/answer")
    wrong = RequestValidator("another-token")
    assert not wrong.validate(request.url, request.form, request.headers["X-Twilio-Signature"])


def test_answer_url_may_be_fetched_with_get(twilio, customer, network):
    customer.serve("/answer", twiml("<Say>Hi</Say>"))
    answered_call(twilio, customer, network, method="GET")
    (request,) = customer.received("/answer")
    assert request.method == "GET" and request.args["CallStatus"] == "in-progress"
    assert request.signature_valid


def test_say_play_and_pause_are_recorded_in_order(twilio, customer, network):
    customer.serve("/prompt.wav", WAV, content_type="audio/wav")
    customer.serve("/answer", twiml(
        '<Say voice="Polly.Amy" language="en-GB" loop="2">Hello</Say>',
        "<Play>prompt.wav</Play><Play>/missing.wav</Play>",
        '<Play digits="ww12"/><Pause length="3"/><Pause/>'))
    customer.routes.pop("/missing.wav", None)
    sid = answered_call(twilio, customer, network)
    call = network.call(sid)
    assert call.transcript == [
        ("answered", "human"),
        ("say", "Hello", "en-GB", "Polly.Amy"),
        ("say", "Hello", "en-GB", "Polly.Amy"),
        ("wait", 0.8, "<Say>"),
        ("play", customer.url("/prompt.wav"), 200),  # a WAV with no samples: no time passes
        ("play", customer.url("/missing.wav"), 204),
        ("play-digits", "ww12"),
        ("wait", 2.0, "<Play>"),
        ("pause", 3),
        ("wait", 3.0, "<Pause>"),
        ("pause", 1),
        ("wait", 1.0, "<Pause>"),
        ("end-of-twiml",),
    ]
    assert call.status == "completed"


def test_say_defaults_to_man_in_us_english(twilio, customer, network):
    customer.serve("/answer", twiml("<Say>Hi</Say>"))
    call = network.call(answered_call(twilio, customer, network))
    assert call.events("say") == [("say", "Hi", "en-US", "man")]


def test_hangup_ends_the_call_and_later_verbs_never_run(twilio, customer, network):
    customer.serve("/answer", twiml("<Hangup/><Say>Never</Say>"))
    call = network.call(answered_call(twilio, customer, network))
    assert call.status == "completed" and call.said == []
    assert call.transcript[-1] == ("hangup",)


@pytest.mark.parametrize("reason, status", [("busy", "busy"), ("rejected", "no-answer")])
def test_reject_ends_the_call_without_completing_it(twilio, customer, network, reason, status):
    customer.serve("/answer", twiml(f'<Reject reason="{reason}"/>'))
    call = network.call(answered_call(twilio, customer, network))
    assert call.status == status


@pytest.mark.parametrize("body, status", [
    ("oops", 500), ("<Response><Say>unclosed</Response>", 200), ("<Html/>", 200),
])
def test_a_failing_or_unparsable_twiml_response_is_an_application_error(
        twilio, customer, network, body, status):
    customer.serve("/answer", body, status=status)
    call = network.call(answered_call(twilio, customer, network))
    assert call.status == "completed"
    assert len(call.events("error")) == 1


def test_fallback_url_takes_over_when_the_url_fails(twilio, customer, network):
    customer.serve("/answer", "down", status=503)
    customer.serve("/fallback", twiml("<Say>Sorry</Say>"))
    call = network.call(answered_call(twilio, customer, network,
                                      fallback_url=customer.url("/fallback")))
    assert call.said == ["Sorry"]
    (fallback,) = customer.received("/fallback")
    assert fallback.form["ErrorUrl"] == customer.url("/answer")


def test_fallback_url_also_takes_over_when_the_twiml_is_unparsable(twilio, customer, network):
    customer.serve("/answer", "<Response><Say>unclosed</Response>")
    customer.serve("/fallback", twiml("<Say>Sorry</Say>"))
    call = network.call(answered_call(twilio, customer, network,
                                      fallback_url=customer.url("/fallback")))
    assert call.said == ["Sorry"] and call.status == "completed"
    assert customer.received("/fallback")[0].form["ErrorCode"] == "12100"


def test_a_looping_app_is_cut_off(twilio, customer, network):
    customer.serve("/answer", twiml("<Say>Again</Say><Redirect/>"))
    call = network.call(answered_call(twilio, customer, network))
    assert call.status == "completed"
    assert len(customer.received("/answer")) == 20
    assert "more than 20" in call.events("error")[0][1]


def test_inline_twiml_runs_without_a_fetch(twilio, customer, network):
    sid = twilio.calls.create(to=CALLEE, from_=CALLER, twiml=twiml("<Say>Inline</Say>")).sid
    network.wait_idle()
    assert network.answer(sid).said == ["Inline"]


def test_url_wins_over_twiml_when_both_are_given(twilio, customer, network):
    customer.serve("/answer", twiml("<Say>From the URL</Say>"))
    sid = answered_call(twilio, customer, network, twiml=twiml("<Say>Inline</Say>"))
    assert network.call(sid).said == ["From the URL"]


def test_send_digits_are_played_after_answer_and_disable_machine_detection(
        twilio, customer, network):
    customer.serve("/answer", twiml("<Hangup/>"))
    sid = answered_call(twilio, customer, network, send_digits="W1234#",
                        machine_detection="Enable")
    call = network.call(sid)
    assert ("send-digits", "W1234#") in call.transcript
    assert call.answered_by is None and "AnsweredBy" not in customer.received("/answer")[0].form


def test_callee_hanging_up_completes_the_call(twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action"><Say>Hi</Say></Gather>'))
    sid = answered_call(twilio, customer, network, status_callback=customer.url("/status"))
    call = network.hang_up(sid)
    network.wait_idle()
    assert call.status == "completed" and call.transcript[-1] == ("callee-hangup",)
    assert customer.received("/action") == []
    assert [r.form["CallStatus"] for r in customer.received("/status")] == ["completed"]


def test_a_call_can_be_ended_from_inside_a_webhook(twilio, customer, network):
    def end_the_call(request):
        twilio.calls(request.form["CallSid"]).update(status="completed")
        return twiml("<Say>Too late</Say>")

    customer.serve("/answer", twiml('<Gather action="/action"><Say>Hi</Say></Gather>'))
    customer.serve("/action", end_the_call)
    sid = answered_call(twilio, customer, network)
    call = network.press(sid, "1#")
    assert call.status == "completed"
    assert call.said == ["Hi"]
    assert ("ended-by-api", "completed") in call.transcript
