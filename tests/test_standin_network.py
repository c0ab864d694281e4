"""The network's own handles (reset, waiting, input checks) and its timing machinery."""

import functools
import threading

import pytest

from standin.walker import CallWalker
from standin.worker import Timers, Worker
from tests.standin_helpers import (  # noqa: F401  (fixtures)
    CALLEE, CALLER, answered_call, customer, network, place_call, standin, twilio, twiml,
)


def test_reset_forgets_calls_messages_and_behaviours(twilio, customer, network):
    network.set_behaviour(CALLEE, "busy")
    network.set_rest_error("+447700900999", 21211)
    place_call(twilio, customer)
    twilio.messages.create(to=CALLEE, from_=CALLER, body="hi")
    network.reset()
    assert network.calls() == [] and network.messages() == []
    customer.serve("/answer", twiml("<Hangup/>"))
    assert network.answer(place_call(twilio, customer)).status == "completed"
    assert twilio.messages.create(to="+447700900999", from_=CALLER, body="hi").sid


def test_calls_are_copies_that_do_not_change_under_the_reader(twilio, customer, network):
    customer.serve("/answer", twiml('<Gather action="/a"><Say>Hi</Say></Gather>'))
    sid = answered_call(twilio, customer, network)
    before = network.call(sid)
    network.hang_up(sid)
    assert before.status == "in-progress" and network.call(sid).status == "completed"


def test_unknown_calls_and_bad_settings_are_refused(network):
    with pytest.raises(KeyError):
        network.answer("CA" + "0" * 32)
    with pytest.raises(ValueError):
        network.set_behaviour(CALLEE, "asleep")
    with pytest.raises(ValueError):
        network.set_sms_outcome(CALLEE, "lost")
    with pytest.raises(ValueError):
        network.pause("CA" + "0" * 32, -1)


@pytest.mark.parametrize("keys", ["", "12a", "A"])
def test_only_keypad_keys_can_be_pressed(twilio, customer, network, keys):
    sid = place_call(twilio, customer)
    with pytest.raises(ValueError):
        network.press(sid, keys)


def test_callbacks_wait_until_the_create_answer_is_out_but_waiters_need_not(network):
    worker = Worker()
    ran = threading.Event()
    worker.submit(ran.set, settle=60)
    assert not ran.wait(0.05)  # held back by its settle delay...
    worker.wait_idle(timeout=2)  # ...until someone waits for it
    assert ran.is_set()


def test_worker_runs_jobs_in_the_order_they_were_queued():
    worker = Worker()
    seen: list[int] = []
    for n in range(5):
        worker.submit(functools.partial(seen.append, n), settle=0.01 * (5 - n))
    worker.wait_idle(timeout=2)
    assert seen == [0, 1, 2, 3, 4]


def test_real_time_timers_fire_and_can_be_replaced_or_cancelled():
    timers = Timers(enabled=True)
    fired: list[str] = []
    done = threading.Event()

    def fresh() -> None:
        fired.append("fresh")
        done.set()

    timers.start("CA1", "gather", 30, lambda: fired.append("stale"))
    timers.start("CA1", "gather", 0.01, fresh)
    timers.start("CA1", "ring", 0.01, lambda: fired.append("ring"))
    timers.cancel("CA1", "ring")
    assert done.wait(2)
    timers.cancel_all()
    assert fired == ["fresh"]


def test_test_mode_timers_never_fire():
    timers = Timers(enabled=False)
    fired = threading.Event()
    timers.start("CA1", "gather", 0, fired.set)
    assert not fired.wait(0.05)


class ScriptedLine:
    """A Line that serves fixed TwiML, for the walker's timing rules on their own."""

    def __init__(self, documents):
        self.documents, self.events, self.timers, self.live = documents, [], [], True

    def is_live(self):
        return self.live

    def record(self, *event):
        self.events.append(event)

    def fetch(self, url, method, extra):
        self.events.append(("fetch", url, extra.get("Digits")))
        return self.documents[url], ""

    def fetch_audio(self, url):
        return 200, b""

    def fetch_words(self, url):
        return None

    def end(self, status):
        self.live = False

    def arm_gather_timer(self, seconds, token):
        self.timers.append((seconds, token))


def test_a_gather_timer_armed_before_a_key_press_is_stale_afterwards():
    line = ScriptedLine({
        "http://app/a": twiml('<Gather action="/b" timeout="3"><Say>one two</Say></Gather>'),
        "http://app/b": twiml("<Hangup/>"),
    })
    walker = CallWalker(line)
    walker.begin("http://app/a", "POST", None)
    (first_seconds, first_token), = line.timers
    assert first_seconds == pytest.approx(3 + 0.8)  # the prompt plays before the timeout runs
    walker.press("4")
    assert line.timers[-1][0] == 3  # inter-digit timeout from here on
    walker.lapse_if_current(first_token)
    assert ("fetch", "http://app/b", "4") not in line.events
    walker.lapse_if_current(line.timers[-1][1])
    assert ("fetch", "http://app/b", "4") in line.events
