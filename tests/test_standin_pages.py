"""The pages for people: index, dev phone and SMS inbox answer, show what they should, and
load nothing but their own CSS and JS."""

import re

import pytest
import requests

from tests.standin_helpers import (  # noqa: F401  (fixtures)
    CALLEE, CALLER, answered_call, customer, network, ringing_call, standin, twilio, twiml,
)


def page(standin, path):
    response = requests.get(standin.url + path)
    assert response.status_code == 200
    return response


def test_the_index_links_to_the_phone_and_the_inbox(standin):
    html = page(standin, "/").text
    assert 'href="/phone"' in html and 'href="/inbox"' in html


def test_pages_use_no_inline_script_or_outside_assets(standin):
    for path in ("/", "/phone", "/inbox"):
        response = page(standin, path)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert re.findall(r"<script(?![^>]*\bsrc=)", response.text) == []
        assert re.findall(r"(?:src|href)=\"(?:https?:)?//", response.text) == []
    assert page(standin, "/static/standin.js").text.startswith("//")
    assert "keypad" in page(standin, "/static/standin.css").text


def test_the_inbox_shows_a_text_body_exactly(standin, twilio, network):
    body = "Your code is 123456 <b>not bold</b>\n\n@mfa.example.org #123456"
    twilio.messages.create(to=CALLEE, from_=CALLER, body=body)
    network.wait_idle()
    html = page(standin, "/inbox").text
    assert CALLEE in html
    assert ("Your code is 123456 &lt;b&gt;not bold&lt;/b&gt;\n\n@mfa.example.org #123456"
            in html)
    assert "delivered" in html


def test_the_inbox_state_reports_the_messages_and_a_version(standin, twilio, network):
    before = page(standin, "/inbox/messages.json").json()["version"]
    twilio.messages.create(to=CALLEE, from_=CALLER, body="hello")
    state = page(standin, "/inbox/messages.json").json()
    assert state["version"] > before
    assert [m["body"] for m in state["messages"]] == ["hello"]
    assert "hello" in page(standin, "/inbox/panel").text


def test_the_phone_shows_a_ringing_call_with_answer_and_decline(standin, twilio, customer,
                                                                network):
    sid = ringing_call(twilio, customer, network)
    html = page(standin, "/phone").text
    assert CALLEE in html and "ringing" in html
    assert f'action="/phone/{sid}/answer"' in html and f'action="/phone/{sid}/decline"' in html
    state = page(standin, "/phone/calls.json").json()
    assert [(c["sid"], c["status"]) for c in state["calls"]] == [(sid, "ringing")]


def test_answering_from_the_phone_shows_the_prompt_and_a_keypad(standin, twilio, customer,
                                                                 network):
    customer.serve("/prompt.wav", b"RIFF", content_type="audio/wav")
    customer.serve("/answer", twiml('<Gather action="/action" finishOnKey="" numDigits="2">'
                                    '<Say language="en-GB">Press hash to approve</Say>'
                                    "<Play>/prompt.wav</Play></Gather>"))
    sid = ringing_call(twilio, customer, network)
    response = requests.post(f"{standin.url}/phone/{sid}/answer", allow_redirects=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("/phone")
    html = page(standin, "/phone").text
    assert "Press hash to approve" in html
    assert f'<audio controls preload="none" src="{customer.url("/prompt.wav")}">' in html
    assert len(re.findall(r'<button name="keys" value="[0-9*#]">', html)) == 12
    assert "Hang up" in html


def test_keypad_presses_from_the_phone_reach_the_gather(standin, twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action" finishOnKey="" numDigits="2">'
                                    "<Say>Press hash</Say></Gather>"))
    customer.serve("/action", twiml("<Say>Approved</Say>"))
    sid = answered_call(twilio, customer, network)
    for key in "0#":
        response = requests.post(f"{standin.url}/phone/{sid}/press", data={"keys": key},
                                 headers={"Accept": "application/json"})
        assert response.json()["sid"] == sid
    assert [r.form["Digits"] for r in customer.received("/action")] == ["0#"]
    assert "Approved" in page(standin, "/phone").text  # now under recent calls


def test_declining_from_the_phone_ends_the_call_busy(standin, twilio, customer, network):
    sid = ringing_call(twilio, customer, network)
    requests.post(f"{standin.url}/phone/{sid}/decline")
    assert network.call(sid).status == "busy"


def test_phone_actions_on_unknown_calls_or_keys_are_refused(standin, twilio, customer,
                                                             network):
    assert requests.post(f"{standin.url}/phone/CA{'0' * 32}/answer").status_code == 404
    sid = answered_call(twilio, customer, network)
    assert requests.post(f"{standin.url}/phone/{sid}/press", data={"keys": "x"}).status_code \
        == 400
    assert requests.post(f"{standin.url}/phone/{sid}/explode").status_code == 404


NUMBER_INSTRUCTION = "Enter the two-digit number shown on your sign-in screen"


@pytest.mark.parametrize("gather, asks", [
    ('<Gather action="/action" finishOnKey="" numDigits="2"><Play>/p.wav</Play></Gather>', True),
    ('<Gather action="/action" numDigits="4"><Say>Enter the two-digit number.</Say></Gather>',
     True),
    ('<Gather action="/action" finishOnKey="" numDigits="1"><Say>Press hash.</Say></Gather>',
     False),
])
def test_the_phone_asks_for_the_number_when_the_gather_wants_two_digits(
        standin, twilio, customer, network, gather, asks):
    customer.serve("/answer", twiml(gather))
    answered_call(twilio, customer, network)
    html = page(standin, "/phone").text
    assert (NUMBER_INSTRUCTION in html) is asks
    assert ("cannot know the number" in html) is asks
    assert '<button name="keys" value="*">*</button>' in html


def test_the_number_instruction_goes_once_the_gather_has_its_digits(
        standin, twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action" finishOnKey="" numDigits="2">'
                                    "<Say>Enter the two-digit number.</Say></Gather>"))
    customer.serve("/action", twiml('<Gather action="/again" numDigits="1">'
                                    "<Say>Press hash.</Say></Gather>"))
    sid = answered_call(twilio, customer, network)
    assert NUMBER_INSTRUCTION in page(standin, "/phone").text
    network.press(sid, "47")
    assert NUMBER_INSTRUCTION not in page(standin, "/phone").text


def test_the_phone_shows_the_simulated_waits(standin, twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action" timeout="4">'
                                    "<Say>Press hash to approve.</Say></Gather>",
                                    "<Say>We heard nothing.</Say>",
                                    '<Gather action="/action"><Say>Try again.</Say></Gather>'))
    sid = answered_call(twilio, customer, network)
    network.lapse(sid)
    html = page(standin, "/phone").text
    assert "Time passes: 5.6 s · no input" in html
    assert "Time passes: 1.2 s · &lt;Say&gt;" in html
    assert "Simulated time so far: 6.8 s" in html
