"""Status callbacks, how numbers behave (busy, machine...), and ending calls over REST."""

import pytest

from tests.standin_helpers import (  # noqa: F401  (fixtures)
    ACCOUNT_SID, CALLEE, answered_call, customer, network, place_call, ringing_call, standin,
    twilio, twiml,
)

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


def callbacks(customer, field="CallStatus"):
    return [r.form[field] for r in customer.received("/status")]


@pytest.mark.parametrize("events, statuses", [
    (None, ["completed"]),
    (ALL_EVENTS, ["initiated", "ringing", "in-progress", "completed"]),
    (["answered"], ["in-progress", "completed"]),
    (["initiated ringing"], ["initiated", "ringing", "completed"]),
    (["ringing", "completed"], ["ringing", "completed"]),  # what the app asks for
])
def test_status_callbacks_follow_the_requested_events(
        twilio, customer, network, events, statuses):
    customer.serve("/answer", twiml("<Say>Hi</Say>"))
    options = {"status_callback": customer.url("/status")}
    if events:
        options["status_callback_event"] = events
    answered_call(twilio, customer, network, **options)
    network.wait_idle()
    assert callbacks(customer) == statuses
    assert callbacks(customer, "SequenceNumber") == [str(n) for n in range(len(statuses))]


def test_status_callbacks_carry_twilios_progress_fields(twilio, customer, network):
    customer.serve("/answer", twiml("<Say>Hi</Say>"))
    sid = answered_call(twilio, customer, network, status_callback=customer.url("/status"),
                        status_callback_event=["answered"])
    network.wait_idle()
    answered, completed = customer.received("/status")
    for request in (answered, completed):
        assert request.form["CallSid"] == sid and request.form["AccountSid"] == ACCOUNT_SID
        assert request.form["CallbackSource"] == "call-progress-events"
        assert request.form["Timestamp"].endswith("+0000")
        assert request.form["Direction"] == "outbound-api"
    assert "CallDuration" not in answered.form
    assert completed.form["CallDuration"] == "0"


def test_status_callback_method_get_is_honoured(twilio, customer, network):
    customer.serve("/answer", twiml("<Hangup/>"))
    answered_call(twilio, customer, network, status_callback=customer.url("/status"),
                  status_callback_method="GET")
    network.wait_idle()
    (request,) = customer.received("/status")
    assert request.method == "GET" and request.args["CallStatus"] == "completed"
    assert request.signature_valid and request.raw_signature_valid


@pytest.mark.parametrize("behaviour, statuses", [
    ("busy", ["initiated", "ringing", "busy"]),
    ("no-answer", ["initiated", "ringing", "no-answer"]),
    ("failed", ["initiated", "failed"]),
])
def test_numbers_that_never_answer_end_the_call_without_fetching_twiml(
        twilio, customer, network, behaviour, statuses):
    network.set_behaviour(CALLEE, behaviour)
    sid = ringing_call(twilio, customer, network, status_callback=customer.url("/status"),
                       status_callback_event=ALL_EVENTS)
    assert network.call(sid).status == behaviour
    assert callbacks(customer) == statuses
    assert customer.received("/answer") == []
    assert twilio.calls(sid).fetch().status == behaviour


def test_a_ringing_call_rings_out_to_no_answer(twilio, customer, network):
    sid = ringing_call(twilio, customer, network, status_callback=customer.url("/status"))
    assert network.call(sid).status == "ringing"
    call = network.ring_out(sid)
    network.wait_idle()
    assert call.status == "no-answer" and callbacks(customer) == ["no-answer"]


def test_hanging_up_a_ringing_call_declines_it_as_busy(twilio, customer, network):
    sid = ringing_call(twilio, customer, network)
    assert network.hang_up(sid).status == "busy"


@pytest.mark.parametrize("detection, answered_by", [
    ("Enable", "machine_start"), ("DetectMessageEnd", "machine_end_beep"),
])
def test_a_machine_answers_and_says_so_when_detection_was_asked(
        twilio, customer, network, detection, answered_by):
    network.set_behaviour(CALLEE, "machine")
    customer.serve("/answer", twiml('<Gather action="/action"><Say>Press hash</Say></Gather>',
                                    "<Redirect>/no-input</Redirect>"))
    customer.serve("/no-input", twiml("<Hangup/>"))
    sid = ringing_call(twilio, customer, network, machine_detection=detection,
                       status_callback=customer.url("/status"))
    assert network.call(sid).status == "in-progress"
    assert customer.received("/answer")[0].form["AnsweredBy"] == answered_by
    call = network.lapse(sid)  # a machine never presses keys
    network.wait_idle()
    assert call.status == "completed" and call.answered_by == answered_by
    assert customer.received("/action") == []
    assert customer.received("/status")[0].form["AnsweredBy"] == answered_by
    assert twilio.calls(sid).fetch().answered_by == answered_by


def test_a_machine_answering_without_detection_sends_no_answered_by(twilio, customer, network):
    network.set_behaviour(CALLEE, "machine")
    customer.serve("/answer", twiml("<Say>Hi</Say>"))
    sid = ringing_call(twilio, customer, network)
    assert "AnsweredBy" not in customer.received("/answer")[0].form
    assert network.call(sid).answered_by is None


def test_a_fax_answers_as_fax_when_detection_was_asked(twilio, customer, network):
    network.set_behaviour(CALLEE, "fax")
    customer.serve("/answer", twiml("<Hangup/>"))
    ringing_call(twilio, customer, network, machine_detection="Enable")
    assert customer.received("/answer")[0].form["AnsweredBy"] == "fax"


def test_a_person_answering_with_detection_is_human(twilio, customer, network):
    customer.serve("/answer", twiml("<Hangup/>"))
    answered_call(twilio, customer, network, machine_detection="Enable")
    assert customer.received("/answer")[0].form["AnsweredBy"] == "human"


def test_completing_an_answered_call_over_rest_ends_it(twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action"><Say>Hi</Say></Gather>'))
    sid = answered_call(twilio, customer, network, status_callback=customer.url("/status"))
    assert twilio.calls(sid).update(status="completed").status == "completed"
    network.wait_idle()
    assert callbacks(customer) == ["completed"]
    assert network.press(sid, "1#").events("digits-ignored")
    assert customer.received("/action") == []


@pytest.mark.parametrize("status", ["canceled", "completed"])
def test_ending_a_ringing_call_over_rest_cancels_it(twilio, customer, network, status):
    sid = ringing_call(twilio, customer, network, status_callback=customer.url("/status"))
    assert twilio.calls(sid).update(status=status).status == "canceled"
    network.wait_idle()
    assert callbacks(customer) == ["canceled"]
    assert network.answer(sid).status == "canceled"


def test_canceling_an_answered_call_leaves_it_alone(twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action"><Say>Hi</Say></Gather>'))
    sid = answered_call(twilio, customer, network)
    assert twilio.calls(sid).update(status="canceled").status == "in-progress"


def test_ending_a_call_that_already_ended_changes_nothing(twilio, customer, network):
    network.set_behaviour(CALLEE, "busy")
    sid = ringing_call(twilio, customer, network, status_callback=customer.url("/status"))
    assert twilio.calls(sid).update(status="completed").status == "busy"
    network.wait_idle()
    assert callbacks(customer) == ["busy"]


def test_new_twiml_over_rest_takes_over_a_live_call(twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action"><Say>Hi</Say></Gather>'))
    sid = answered_call(twilio, customer, network)
    twilio.calls(sid).update(twiml=twiml("<Say>Goodbye</Say><Hangup/>"))
    network.wait_idle()
    call = network.call(sid)
    assert call.said == ["Hi", "Goodbye"] and call.status == "completed"


def test_new_twiml_over_rest_for_a_ringing_call_is_used_on_answer(twilio, customer, network):
    customer.serve("/answer", twiml("<Say>Old</Say>"))
    sid = ringing_call(twilio, customer, network)
    twilio.calls(sid).update(twiml=twiml("<Say>New</Say>"))
    assert network.answer(sid).said == ["New"]
    assert customer.received("/answer") == []


def test_fetching_a_call_shows_how_it_is_going(twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/action"><Say>Hi</Say></Gather>'))
    sid = place_call(twilio, customer)
    network.wait_idle()
    assert twilio.calls(sid).fetch().status == "ringing"
    network.answer(sid)
    fetched = twilio.calls(sid).fetch()
    assert fetched.status == "in-progress" and fetched.start_time is not None
    network.hang_up(sid)
    fetched = twilio.calls(sid).fetch()
    assert fetched.status == "completed" and fetched.duration == "0"


def test_a_call_ended_during_its_answered_callback_never_fetches_twiml(
        twilio, customer, network):
    def end_the_call(request):
        if request.form["CallStatus"] == "in-progress":
            twilio.calls(request.form["CallSid"]).update(status="completed")
        return ""

    customer.serve("/status", end_the_call, content_type="text/plain")
    customer.serve("/answer", twiml("<Say>Hi</Say>"))
    answered_call(twilio, customer, network, status_callback=customer.url("/status"),
                  status_callback_event=["answered"])
    network.wait_idle()
    assert customer.received("/answer") == []
    assert callbacks(customer) == ["in-progress", "completed"]


# ---- AsyncAmd: detection runs in the background and reports to its own callback ----

def amd_call(twilio, customer, network, behaviour, detection, **options):
    """A call with AsyncAmd to a number that behaves so; a person answers a ringing one."""
    network.set_behaviour(CALLEE, behaviour)
    customer.serve("/answer", twiml('<Gather action="/action" finishOnKey="" numDigits="1">'
                                    "<Say>Press hash</Say></Gather>"))
    customer.serve("/action", twiml("<Say>Verified</Say><Hangup/>"))
    options = {"async_amd_status_callback": customer.url("/amd"), **options}
    sid = ringing_call(twilio, customer, network, machine_detection=detection, async_amd="true",
                       status_callback=customer.url("/status"), **options)
    if network.call(sid).status == "ringing":
        network.answer(sid)
    network.wait_idle()
    return sid


@pytest.mark.parametrize("behaviour, detection, answered_by", [
    ("ring", "Enable", "human"),
    ("ring", "DetectMessageEnd", "human"),
    ("machine", "Enable", "machine_start"),
    ("machine", "DetectMessageEnd", "machine_end_beep"),
    ("fax", "DetectMessageEnd", "fax"),
    ("long-greeting", "Enable", "machine_start"),
    ("long-greeting", "DetectMessageEnd", "machine_end_other"),
])
def test_async_detection_posts_its_result_to_its_own_callback_after_the_answer(
        twilio, customer, network, behaviour, detection, answered_by):
    sid = amd_call(twilio, customer, network, behaviour, detection)
    assert "AnsweredBy" not in customer.received("/answer")[0].form  # TwiML ran at once
    (amd,) = customer.received("/amd")
    assert amd.method == "POST" and amd.signature_valid
    assert set(amd.form) == {"AccountSid", "CallSid", "AnsweredBy", "MachineDetectionDuration"}
    assert amd.form["AccountSid"] == ACCOUNT_SID and amd.form["CallSid"] == sid
    assert amd.form["AnsweredBy"] == answered_by
    assert int(amd.form["MachineDetectionDuration"]) > 0
    paths = [r.path for r in customer.received() if r.path != "/status"]
    assert paths == ["/answer", "/amd"]
    assert network.call(sid).events("machine-detection")[0][1] == answered_by
    assert twilio.calls(sid).fetch().answered_by == answered_by


def test_a_person_whose_greeting_fooled_detection_can_still_press_keys(
        twilio, customer, network):
    sid = amd_call(twilio, customer, network, "long-greeting", "Enable")
    assert customer.received("/amd")[0].form["AnsweredBy"] == "machine_start"
    call = network.press(sid, "#")
    (action,) = customer.received("/action")
    assert action.form["Digits"] == "#" and "AnsweredBy" not in action.form
    assert call.said == ["Press hash", "Verified"] and call.status == "completed"


def test_a_long_greeting_answers_as_machine_start_with_synchronous_detection(
        twilio, customer, network):
    network.set_behaviour(CALLEE, "long-greeting")
    customer.serve("/answer", twiml("<Hangup/>"))
    sid = ringing_call(twilio, customer, network, machine_detection="Enable")
    assert network.call(sid).status == "ringing"  # a person: answers when they pick up
    network.answer(sid)
    assert customer.received("/answer")[0].form["AnsweredBy"] == "machine_start"


def test_async_detection_callback_honours_get_and_a_url_relative_to_the_answer_url(
        twilio, customer, network):
    amd_call(twilio, customer, network, "machine", "Enable",
             async_amd_status_callback="amd?challenge=7",
             async_amd_status_callback_method="GET")
    (amd,) = customer.received("/amd")
    assert amd.method == "GET" and amd.args["challenge"] == "7"
    assert amd.args["AnsweredBy"] == "machine_start"
    assert amd.signature_valid and amd.raw_signature_valid


def test_the_app_may_hang_up_from_the_detection_callback(twilio, customer, network):
    def hang_up_on_voicemail(request):
        if request.form["AnsweredBy"] == "machine_end_beep":
            twilio.calls(request.form["CallSid"]).update(status="completed")
        return ""

    customer.serve("/amd", hang_up_on_voicemail, content_type="text/plain")
    sid = amd_call(twilio, customer, network, "machine", "DetectMessageEnd")
    call = network.call(sid)
    assert call.status == "completed" and ("ended-by-api", "completed") in call.transcript
    assert callbacks(customer) == ["completed"]
    assert customer.received("/status")[0].form["AnsweredBy"] == "machine_end_beep"


def test_no_detection_result_for_a_call_that_ended_before_it_decided(twilio, customer, network):
    network.set_behaviour(CALLEE, "machine")
    customer.serve("/answer", twiml("<Hangup/>"))
    sid = ringing_call(twilio, customer, network, machine_detection="Enable", async_amd="true",
                       async_amd_status_callback=customer.url("/amd"))
    assert network.call(sid).status == "completed"
    assert customer.received("/amd") == []


def test_async_amd_false_keeps_detection_synchronous(twilio, customer, network):
    network.set_behaviour(CALLEE, "machine")
    customer.serve("/answer", twiml("<Hangup/>"))
    ringing_call(twilio, customer, network, machine_detection="Enable", async_amd="false",
                 async_amd_status_callback=customer.url("/amd"))
    assert customer.received("/answer")[0].form["AnsweredBy"] == "machine_start"
    assert customer.received("/amd") == []
