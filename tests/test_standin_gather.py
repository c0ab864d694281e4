"""The stand-in's <Gather> follows Twilio's documented rules (NOTES.md section 1.1)."""

import pytest

from tests.standin_helpers import (  # noqa: F401  (fixtures)
    answered_call, customer, network, ringing_call, standin, twilio, twiml,
)

AFTER_GATHER = "<Redirect>/no-input</Redirect>"


def gather(attributes: str = "", prompt: str = "<Say>Press hash to approve.</Say>") -> str:
    return f"<Gather {attributes}>{prompt}</Gather>"


def start(twilio, customer, network, attributes="", after=AFTER_GATHER, path="/answer"):
    customer.serve(path, twiml(gather(attributes), after))
    customer.serve("/no-input", twiml("<Say>We heard nothing.</Say>"))
    customer.serve("/action", twiml("<Say>Thank you.</Say>"))
    return answered_call(twilio, customer, network, answer_path=path)


def digits_posted(customer, path="/action"):
    return [r.form.get("Digits") for r in customer.received(path)]


def test_default_finish_key_hash_submits_the_digits_typed_before_it(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action"')
    network.press(sid, "123#")
    assert digits_posted(customer) == ["123"]


def test_finish_key_is_not_part_of_digits(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action"')
    network.press(sid, "0#")
    assert digits_posted(customer) == ["0"]


def test_lone_finish_key_counts_as_no_input(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action"')
    call = network.press(sid, "#")
    assert digits_posted(customer) == []
    assert len(customer.received("/no-input")) == 1
    assert ("no-input",) in call.transcript


def test_num_digits_submits_as_soon_as_enough_digits_are_pressed(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action" numDigits="4"')
    network.press(sid, "1234")
    assert digits_posted(customer) == ["1234"]


def test_lapse_submits_the_digits_typed_so_far(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action"')
    network.press(sid, "12")
    assert digits_posted(customer) == []
    network.lapse(sid)
    assert digits_posted(customer) == ["12"]


def test_no_input_falls_through_to_the_verb_after_the_gather(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action"')
    call = network.lapse(sid)
    assert digits_posted(customer) == []
    assert len(customer.received("/no-input")) == 1
    assert call.said == ["Press hash to approve.", "We heard nothing."]


def test_no_input_with_nothing_after_the_gather_ends_the_call(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action"', after="")
    call = network.lapse(sid)
    assert call.status == "completed"
    assert call.transcript[-1] == ("end-of-twiml",)


def test_action_on_empty_result_posts_empty_digits_after_silence(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action" actionOnEmptyResult="true"')
    network.lapse(sid)
    posted = customer.received("/action")
    assert len(posted) == 1 and "Digits" in posted[0].form and posted[0].form["Digits"] == ""
    assert customer.received("/no-input") == []


def test_action_on_empty_result_posts_empty_digits_for_a_lone_finish_key(
        twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action" actionOnEmptyResult="true"')
    network.press(sid, "#")
    assert digits_posted(customer) == [""]


def test_no_finish_key_with_two_digits_submits_a_lone_hash_after_the_timeout(
        twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action" finishOnKey="" numDigits="2"')
    network.press(sid, "#")
    assert digits_posted(customer) == []
    network.lapse(sid)
    assert digits_posted(customer) == ["#"]


def test_no_finish_key_with_two_digits_submits_zero_hash_at_once(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action" finishOnKey="" numDigits="2"')
    network.press(sid, "0#")
    assert digits_posted(customer) == ["0#"]


@pytest.mark.parametrize("action, expected_path", [
    ("verify", "/ivr/verify"),
    ("../top", "/top"),
    ("/action", "/action"),
])
def test_relative_action_resolves_against_the_current_document(
        twilio, customer, network, action, expected_path):
    sid = start(twilio, customer, network, f'action="{action}"', path="/ivr/start")
    network.press(sid, "5#")
    assert [r.form.get("Digits") for r in customer.received(expected_path)] == ["5"]


def test_gather_without_action_posts_back_to_its_own_document(twilio, customer, network):
    sid = start(twilio, customer, network, "")
    network.press(sid, "7#")
    received = customer.received("/answer")
    assert [r.form.get("Digits") for r in received] == [None, "7"]
    assert received[1].method == "POST"


def test_gather_method_get_sends_digits_in_the_query_string(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action" method="GET"')
    network.press(sid, "9#")
    (request,) = customer.received("/action")
    assert request.method == "GET" and request.args["Digits"] == "9"
    assert request.signature_valid


def test_redirect_defaults_to_post_and_honours_get(twilio, customer, network):
    customer.serve("/answer", twiml("<Redirect>posted</Redirect>"))
    customer.serve("/posted", twiml('<Redirect method="GET">/got</Redirect>'))
    customer.serve("/got", twiml("<Hangup/>"))
    call = network.call(answered_call(twilio, customer, network))
    (posted,) = customer.received("/posted")
    (got,) = customer.received("/got")
    assert posted.method == "POST" and posted.form["CallSid"] == call.sid
    assert got.method == "GET" and got.args["CallSid"] == call.sid and got.signature_valid
    assert call.events("redirect") == [("redirect", customer.url("/posted")),
                                       ("redirect", customer.url("/got"))]


def test_action_response_replaces_the_document(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action"')
    call = network.press(sid, "1#")
    assert call.said == ["Press hash to approve.", "Thank you."]
    assert customer.received("/no-input") == []
    assert call.status == "completed"


def test_nested_prompts_are_heard_as_the_gather_starts(twilio, customer, network):
    customer.serve("/hello.wav", b"RIFF", content_type="audio/wav")
    customer.serve("/answer", twiml(gather(
        'action="/action"',
        '<Say language="en-GB" voice="Polly.Amy">Hello</Say><Play>/hello.wav</Play>'
        '<Pause length="2"/>')))
    sid = answered_call(twilio, customer, network)
    call = network.call(sid)
    assert call.transcript[1:] == [
        ("gather", {"action": "/action"}),
        ("say", "Hello", "en-GB", "Polly.Amy"),
        ("play", customer.url("/hello.wav"), 200),
        ("pause", 2),
    ]


def test_keys_typed_ahead_go_to_the_next_gather(twilio, customer, network):
    customer.serve("/answer", twiml(gather('action="/second" numDigits="1"')))
    customer.serve("/second", twiml(gather('action="/third" numDigits="1"')))
    customer.serve("/third", twiml("<Hangup/>"))
    sid = answered_call(twilio, customer, network)
    network.press(sid, "12")
    assert [r.form["Digits"] for r in customer.received("/second")] == ["1"]
    assert [r.form["Digits"] for r in customer.received("/third")] == ["2"]


def test_a_speech_only_gather_ignores_keys(twilio, customer, network):
    sid = start(twilio, customer, network, 'action="/action" input="speech"')
    call = network.press(sid, "1#")
    assert call.events("digits-ignored") == [("digits-ignored", "1"), ("digits-ignored", "#")]
    network.lapse(sid)
    assert digits_posted(customer) == [] and len(customer.received("/no-input")) == 1


def test_keys_pressed_on_a_call_not_yet_answered_are_ignored(twilio, customer, network):
    customer.serve("/answer", twiml(gather('action="/action"')))
    sid = ringing_call(twilio, customer, network)
    call = network.press(sid, "1")
    assert call.events("digits-ignored") == [("digits-ignored", "1")]


@pytest.mark.parametrize("attributes", [
    'finishOnKey="ab"', 'numDigits="0"', 'timeout="soon"', 'actionOnEmptyResult="yes"',
])
def test_an_invalid_gather_attribute_is_an_application_error(
        twilio, customer, network, attributes):
    customer.serve("/answer", twiml(gather(attributes)))
    sid = answered_call(twilio, customer, network)
    call = network.call(sid)
    assert call.status == "completed"
    assert call.events("error")
