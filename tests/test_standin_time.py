"""The stand-in reports the time it simulates: ("wait", seconds, why) events on the transcript,
summed by SimCall.simulated_seconds (standin/README.md, "Simulated time")."""

import struct

import pytest

from standin.records import SimCall, utcnow
from standin.timing import PLAY_FALLBACK_SECONDS, say_seconds, wav_seconds
from standin.walker import CallWalker
from tests.standin_helpers import (  # noqa: F401  (fixtures)
    answered_call, customer, network, standin, twilio, twiml,
)
from tests.test_standin_network import ScriptedLine

PROMPT = "<Say>Press hash to approve.</Say>"  # four words: 1.6 s


def wav(seconds: float, rate: int = 8000, sample_bytes: int = 2, extra_chunk: bytes = b"") -> bytes:
    """A mono PCM (or, with sample_bytes=1, mu-law) WAV of silence lasting seconds."""
    data = b"\x00" * int(rate * sample_bytes * seconds)
    fmt = struct.pack("<HHIIHH", 1 if sample_bytes == 2 else 7, 1, rate, rate * sample_bytes,
                      sample_bytes, 8 * sample_bytes)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunk
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def gather_call(twilio, customer, network, attributes, prompt=PROMPT, after="<Hangup/>"):
    customer.serve("/answer", twiml(f'<Gather action="/action" {attributes}>{prompt}</Gather>',
                                    after))
    customer.serve("/action", twiml("<Say>Verified. Goodbye.</Say><Hangup/>"))
    return answered_call(twilio, customer, network)


def index_of_say(call: SimCall, text: str, since: int) -> int:
    return next(i for i, event in enumerate(call.transcript)
                if i >= since and event[:2] == ("say", text))


def test_a_key_that_completes_the_gather_costs_no_simulated_time(twilio, customer, network):
    sid = gather_call(twilio, customer, network, 'finishOnKey="" numDigits="1" timeout="5"')
    pressed_at = len(network.call(sid).transcript)
    call = network.press(sid, "#")
    heard_at = index_of_say(call, "Verified. Goodbye.", pressed_at)
    assert call.simulated_seconds(pressed_at, heard_at) == 0
    assert call.events("wait") == [("wait", 0.8, "<Say>")]  # "Verified. Goodbye." itself


def test_a_gather_ended_by_its_inter_digit_timeout_waits_that_timeout(
        twilio, customer, network):
    sid = gather_call(twilio, customer, network, 'finishOnKey="" numDigits="2" timeout="5"')
    pressed_at = len(network.call(sid).transcript)
    network.press(sid, "#")
    call = network.lapse(sid)
    heard_at = index_of_say(call, "Verified. Goodbye.", pressed_at)
    assert call.simulated_seconds(pressed_at, heard_at) == 5
    assert ("wait", 5.0, "inter-digit timeout") in call.transcript[pressed_at:heard_at]
    assert [r.form["Digits"] for r in customer.received("/action")] == ["#"]


def test_a_gather_with_no_key_waits_for_its_prompts_and_then_its_timeout(
        twilio, customer, network):
    sid = gather_call(twilio, customer, network, 'timeout="4"',
                      after="<Say>We heard nothing.</Say>")
    answered_at = len(network.call(sid).transcript)
    call = network.lapse(sid)
    assert call.transcript[answered_at:answered_at + 2] == [
        ("wait", pytest.approx(1.6 + 4), "no input"), ("gather-timeout",)]
    # ...then the verb after </Gather> plays in full (three words: 1.2 s).
    assert call.simulated_seconds(answered_at) == pytest.approx(1.6 + 4 + 1.2)


def test_a_prompt_outside_a_gather_waits_its_length_after_it_is_heard(
        twilio, customer, network):
    customer.serve("/answer", twiml("<Say>Hello there.</Say><Pause length=\"2\"/>",
                                    f'<Gather action="/action">{PROMPT}</Gather>'))
    call = network.call(answered_call(twilio, customer, network))
    assert [e for e in call.transcript if e[0] in ("say", "pause", "wait", "gather")] == [
        ("say", "Hello there.", "en-US", "man"), ("wait", 0.8, "<Say>"),
        ("pause", 2), ("wait", 2.0, "<Pause>"),
        ("gather", {"action": "/action"}), ("say", "Press hash to approve.", "en-US", "man"),
    ]  # the gather's own prompt waits only if nobody answers it
    assert call.simulated_seconds() == pytest.approx(2.8)


def test_a_played_wav_lasts_as_long_as_its_samples(twilio, customer, network):
    customer.serve("/hello.wav", wav(2.5), content_type="audio/wav")
    customer.serve("/hello.mp3", b"ID3\x03\x00not a wav", content_type="audio/mpeg")
    customer.serve("/answer", twiml("<Play>/hello.wav</Play><Play>/hello.mp3</Play>",
                                    '<Gather action="/action" timeout="3">'
                                    '<Play loop="2">/hello.wav</Play></Gather>'))
    sid = answered_call(twilio, customer, network)
    assert network.call(sid).events("wait") == [
        ("wait", 2.5, "<Play>"), ("wait", PLAY_FALLBACK_SECONDS, "<Play>")]
    assert network.lapse(sid).events("wait")[-1] == ("wait", 2.5 * 2 + 3, "no input")


@pytest.mark.parametrize("audio, seconds", [
    (wav(1.25), 1.25),
    (wav(3, sample_bytes=1), 3.0),  # 8 kHz mu-law, the telephone format
    (wav(1, extra_chunk=b"LIST\x03\x00\x00\x00abc\x00"), 1.0),  # odd chunk, padded
    (wav(2)[:-8000], 1.5),  # truncated: only what was served can play
    (b"ID3\x03\x00\x00", None),
    (b"RIFF", None),
])
def test_wav_length_is_read_from_the_header_and_the_bytes_served(audio, seconds):
    assert wav_seconds(audio) == seconds


def test_say_length_follows_its_words():
    assert say_seconds("Press hash to approve.") == pytest.approx(1.6)
    assert say_seconds("  ") == 0


def test_the_real_time_gather_timer_reports_the_same_waits():
    line = ScriptedLine({
        "http://app/a": twiml('<Gather action="/b" timeout="3" finishOnKey="" numDigits="2">'
                              "<Say>one two</Say></Gather><Redirect>/a</Redirect>"),
        "http://app/b": twiml("<Hangup/>"),
    })
    walker = CallWalker(line)
    walker.begin("http://app/a", "POST", None)
    walker.lapse_if_current(line.timers[-1][1])  # nobody pressed anything
    assert ("wait", pytest.approx(0.8 + 3), "no input") in line.events
    walker.press("#")
    walker.lapse_if_current(line.timers[-1][1])
    assert line.events[-5:-2] == [("wait", 3.0, "inter-digit timeout"), ("gather-timeout",),
                                  ("action", "http://app/b", "#")]


def test_simulated_seconds_sums_the_waits_in_a_slice_of_the_transcript():
    call = SimCall(sid="CA1", account_sid="AC1", to="+1", from_="+2", status="completed",
                   params={}, created_at=utcnow(),
                   transcript=[("wait", 1.5, "<Say>"), ("say", "x", "en-GB", "man"),
                               ("wait", 2, "<Pause>"), ("wait", 0.25, "no input")])
    assert call.simulated_seconds() == 3.75
    assert call.simulated_seconds(1) == 2.25
    assert call.simulated_seconds(0, 2) == 1.5
    assert call.simulated_seconds(1, -1) == 2


def test_a_pause_shorter_than_the_inter_digit_timeout_keeps_the_keys_together(
        twilio, customer, network):
    sid = gather_call(twilio, customer, network, 'finishOnKey="" numDigits="2" timeout="5"')
    network.press(sid, "0")
    call = network.pause(sid, 4.5)
    assert customer.received("/action") == [] and call.transcript[-1] == (
        "wait", 4.5, "caller pause")
    network.press(sid, "#")
    assert [r.form["Digits"] for r in customer.received("/action")] == ["0#"]


def test_a_pause_longer_than_the_inter_digit_timeout_submits_what_was_typed(
        twilio, customer, network):
    sid = gather_call(twilio, customer, network, 'finishOnKey="" numDigits="2" timeout="5"')
    network.press(sid, "0")
    pressed_at = len(network.call(sid).transcript)
    network.pause(sid, 3)
    call = network.pause(sid, 3)  # 6 s in all: the timer ran out 5 s after the key
    assert [r.form["Digits"] for r in customer.received("/action")] == ["0"]
    assert call.events("wait")[:2] == [("wait", 3.0, "caller pause"),
                                       ("wait", 2.0, "inter-digit timeout")]
    assert call.simulated_seconds(pressed_at) == pytest.approx(5 + 0.8)  # + "Verified. Goodbye."


def test_a_long_pause_runs_through_each_gather_it_outlasts(twilio, customer, network):
    customer.serve("/answer", twiml(f'<Gather action="/action" timeout="4">{PROMPT}</Gather>',
                                    "<Redirect>/again</Redirect>"))
    customer.serve("/again", twiml('<Gather action="/action" timeout="4">'
                                   "<Say>Press hash.</Say></Gather><Hangup/>"))
    sid = answered_call(twilio, customer, network)
    answered_at = len(network.call(sid).transcript)
    call = network.pause(sid, 8)  # 5.6 s for the first gather, 2.4 of the second's 4.8
    assert call.events("wait") == [
        ("wait", pytest.approx(5.6), "no input"), ("wait", pytest.approx(2.4), "caller pause")]
    assert call.status == "in-progress"
    call = network.lapse(sid)
    assert call.events("wait")[-1] == ("wait", pytest.approx(2.4), "no input")
    assert call.simulated_seconds(answered_at) == pytest.approx(5.6 + 0.8 + 4)
    assert call.status == "completed"
