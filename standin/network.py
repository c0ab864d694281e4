"""The simulated telephone network: every call and text the stand-in has carried, how each
number behaves, and the handles a test (or a person at /phone) uses to act as the callee.

Thread-safe: state changes happen under one lock; webhooks go out from the single worker
thread (see worker.py). Control methods block until the webhook exchanges they cause have
finished and return a copy of the call, so a test can assert right after `press()`.
"""

from __future__ import annotations

import threading

from .calls import CallProgress
from .errors import MAGIC_CALL_FROM, MAGIC_CALL_TO, MAGIC_SMS_FROM, MAGIC_SMS_TO
from .records import BEHAVIOURS, SimCall, SimMessage, new_sid, utcnow
from .sms import DEFAULT_ERROR_CODES, MessageDelivery
from .webhooks import WebhookClient
from .worker import Timers, Worker

PHONE_KEYS = set("0123456789*#")
SMS_OUTCOMES = ("delivered", "undelivered", "failed")


class Network:
    def __init__(self, account_sid: str, auth_token: str, *, realtime: bool = True):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.realtime = realtime
        # Twilio never calls back before its REST answer has reached the app (see worker.py).
        self.settle_seconds = 0.5 if realtime else 0.05
        self.lock = threading.RLock()
        self.worker = Worker()
        self.timers = Timers(enabled=realtime)
        self.webhooks = WebhookClient(auth_token)
        self._progress = CallProgress(self)
        self._delivery = MessageDelivery(self)
        self._calls: dict[str, SimCall] = {}
        self._messages: dict[str, SimMessage] = {}
        self._behaviours: dict[str, str] = {}
        self._rest_errors: dict[str, int] = {}
        self._sms_outcomes: dict[str, tuple[str, int | None]] = {}
        self._faults: list[tuple[str, int]] = []  # (mode, HTTP status) for the next REST requests
        self._version = 0

    # ---- what happened (copies, newest last) ----

    def messages(self, to: str | None = None) -> list[SimMessage]:
        with self.lock:
            return [m.snapshot() for m in self._messages.values() if to in (None, m.to)]

    def calls(self, to: str | None = None) -> list[SimCall]:
        with self.lock:
            return [c.snapshot() for c in self._calls.values() if to in (None, c.to)]

    def call(self, call_sid: str) -> SimCall:
        with self.lock:
            return self._call(call_sid).snapshot()

    def message(self, message_sid: str) -> SimMessage:
        with self.lock:
            if message_sid not in self._messages:
                raise KeyError(f"no message {message_sid}")
            return self._messages[message_sid].snapshot()

    @property
    def version(self) -> int:
        """Grows whenever anything changes; the pages poll it to know when to redraw."""
        return self._version

    # ---- how numbers behave ----

    def set_behaviour(self, number: str, behaviour: str) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}, not {behaviour!r}")
        with self.lock:
            self._behaviours[number] = behaviour

    def set_rest_error(self, number: str, code: int | None) -> None:
        """Creating a call or message to number fails with Twilio error code (None: clear)."""
        with self.lock:
            if code is None:
                self._rest_errors.pop(number, None)
            else:
                self._rest_errors[number] = int(code)

    def fail_next_requests(self, count: int, status: int = 500) -> None:
        """The next REST requests are refused with status and do nothing (Twilio: 429 always so)."""
        self._add_faults("refuse", status, count)

    def fail_after_next_requests(self, count: int, status: int = 500) -> None:
        """The next REST requests are carried out (the call rings, the text is delivered), but the
        answer is an error: what Twilio's error 20500 warns a retry can turn into two texts."""
        self._add_faults("fail-after", status, count)

    def garble_next_answers(self, count: int, status: int = 200) -> None:
        """The next REST requests are carried out and answered with a body that is not JSON."""
        self._add_faults("garble", status, count)

    def drop_next_connections(self, count: int) -> None:
        """The next REST requests are read and carried out, then the connection is closed with
        no answer at all (the client sees the remote end disconnect)."""
        self._add_faults("drop", 0, count)

    def _add_faults(self, mode: str, status: int, count: int) -> None:
        with self.lock:
            self._faults.extend([(mode, status)] * count)

    def set_sms_outcome(self, number: str, status: str, error_code: int | None = None) -> None:
        if status not in SMS_OUTCOMES:
            raise ValueError(f"SMS outcome must be one of {SMS_OUTCOMES}, not {status!r}")
        with self.lock:
            self._sms_outcomes[number] = (status, error_code or DEFAULT_ERROR_CODES.get(status))

    # ---- acting as the callee ----

    def answer(self, call_sid: str) -> SimCall:
        return self._control(call_sid, lambda call: self._progress.answer(call, "human"))

    def press(self, call_sid: str, keys: str) -> SimCall:
        """Press each key in order, as a caller on a 12-key keypad would."""
        if not keys or not set(keys) <= PHONE_KEYS:
            raise ValueError(f"keys must be made of 0-9, * and #, not {keys!r}")

        def press(call: SimCall) -> None:
            walker = self._progress.walkers.get(call.sid)
            if walker is None or call.status != "in-progress":
                self.record(call, ("digits-ignored", keys))
            else:
                walker.press(keys)

        return self._control(call_sid, press)

    def lapse(self, call_sid: str) -> SimCall:
        """The current <Gather>'s timeout passes with no further key."""

        def lapse(call: SimCall) -> None:
            walker = self._progress.walkers.get(call.sid)
            if walker is not None:
                walker.lapse()

        return self._control(call_sid, lapse)

    def pause(self, call_sid: str, seconds: float) -> SimCall:
        """The caller presses nothing for `seconds` of simulated time: a gather whose timeout
        runs out meanwhile lapses (as lapse() does), and the time is reported as waits."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, not {seconds!r}")

        def pause(call: SimCall) -> None:
            walker = self._progress.walkers.get(call.sid)
            if walker is not None:
                walker.pause(seconds)

        return self._control(call_sid, pause)

    def hang_up(self, call_sid: str) -> SimCall:
        """The callee hangs up; on a call still ringing that means declining it (busy)."""

        def hang_up(call: SimCall) -> None:
            if call.status == "in-progress":
                self.record(call, ("callee-hangup",))
                self._progress.end(call, "completed")
            elif call.status in ("queued", "ringing"):
                self._decline(call)

        return self._control(call_sid, hang_up)

    def decline(self, call_sid: str) -> SimCall:
        return self._control(call_sid, self._decline)

    def ring_out(self, call_sid: str) -> SimCall:
        """Nobody answers within the ring timeout: the call ends no-answer."""
        return self._control(call_sid, self._progress.ring_out)

    def wait_idle(self, timeout: float = 30) -> None:
        """Block until every queued webhook (status callbacks etc.) has been sent.

        It returns the moment the stand-in is idle; the generous limit only matters on a loaded
        machine, where a call's webhook chain (each answered by the app) can take seconds."""
        self.worker.wait_idle(timeout)

    def reset(self) -> None:
        """Forget all calls, messages and per-number settings (after in-flight jobs finish)."""
        self.wait_idle()
        self.timers.cancel_all()
        with self.lock:
            self._progress.walkers.clear()
            for store in (self._calls, self._messages, self._behaviours, self._rest_errors,
                          self._sms_outcomes):
                store.clear()
            self._faults.clear()
            self._version += 1

    # ---- for the REST API and the call machinery ----

    def record(self, item: SimCall, event: tuple) -> None:
        with self.lock:
            item.transcript.append(tuple(event))
            self.touch(item)

    def touch(self, item: SimCall | SimMessage) -> None:
        with self.lock:
            item.updated_at = utcnow()
            self._version += 1

    def behaviour_of(self, number: str) -> str:
        with self.lock:
            return self._behaviours.get(number, "ring")

    def sms_outcome_of(self, number: str) -> tuple[str, int | None]:
        with self.lock:
            return self._sms_outcomes.get(number, ("delivered", None))

    def take_fault(self) -> tuple[str, int] | None:
        with self.lock:
            return self._faults.pop(0) if self._faults else None

    def refusal(self, kind: str, to: str, from_: str | None) -> int | None:
        """The Twilio error code a create of this kind ("call"/"sms") must fail with, if any."""
        magic_to, magic_from = (MAGIC_CALL_TO, MAGIC_CALL_FROM) if kind == "call" else (
            MAGIC_SMS_TO, MAGIC_SMS_FROM)
        with self.lock:
            configured = self._rest_errors.get(to)
        return configured or magic_to.get(to) or magic_from.get(from_ or "")

    def place_call(self, params: dict) -> SimCall:
        call = SimCall(sid=new_sid("CA"), account_sid=self.account_sid, to=params["To"],
                       from_=params["From"], status="queued", params=params,
                       created_at=utcnow())
        with self.lock:
            self._calls[call.sid] = call
            self.touch(call)
            created = call.snapshot()
        self.worker.submit(lambda: self._progress.dial(call), settle=self.settle_seconds)
        return created

    def send_message(self, params: dict) -> SimMessage:
        service = params.get("MessagingServiceSid")
        message = SimMessage(sid=new_sid("SM"), account_sid=self.account_sid, to=params["To"],
                             from_=params.get("From"), body=params.get("Body", ""),
                             status="accepted" if service else "queued",
                             messaging_service_sid=service, created_at=utcnow(),
                             status_callback=params.get("StatusCallback"), params=params)
        with self.lock:
            self._messages[message.sid] = message
            self.touch(message)
            created = message.snapshot()
        self.worker.submit(lambda: self._delivery.deliver(message), settle=self.settle_seconds)
        return created

    def update_call(self, call_sid: str, params: dict) -> SimCall:
        """POST Calls/{Sid}.json. Never waits on the worker: the app may be mid-webhook.
        Decided under the lock, so the worker cannot answer the call halfway through."""
        status = params.get("Status")
        new_twiml = bool(params.get("Url") or params.get("Twiml"))
        with self.lock:
            call = self._call(call_sid)
            for name in ("StatusCallback", "StatusCallbackMethod", "TimeLimit"):
                if name in params:
                    call.params[name] = params[name]
            unanswered = call.status in ("queued", "ringing")
            if status and unanswered:
                self.record(call, ("ended-by-api", "canceled"))
                self._progress.end(call, "canceled")  # a call not yet answered is canceled
            elif status == "completed" and call.status == "in-progress":
                self.record(call, ("ended-by-api", "completed"))
                self._progress.end(call, "completed")
            elif not status and new_twiml and unanswered:
                # The callee will get the new instructions when they answer.
                for name in ("Url", "Twiml", "Method"):
                    call.params.pop(name, None)
                    if params.get(name):
                        call.params[name] = params[name]
            elif not status and new_twiml and call.status == "in-progress":
                self.worker.submit(lambda: self._take_over(call, params),
                                   settle=self.settle_seconds)
            return call.snapshot()

    # ---- internals ----

    def _call(self, call_sid: str) -> SimCall:
        if call_sid not in self._calls:
            raise KeyError(f"no call {call_sid}")
        return self._calls[call_sid]

    def _control(self, call_sid: str, action) -> SimCall:
        with self.lock:
            call = self._call(call_sid)
        self.worker.run(lambda: action(call))
        return self.call(call_sid)

    def _decline(self, call: SimCall) -> None:
        if call.status in ("queued", "ringing"):
            self.record(call, ("declined",))
            self._progress.end(call, "busy")

    def _take_over(self, call: SimCall, params: dict) -> None:
        walker = self._progress.walkers.get(call.sid)
        if walker is not None and call.status == "in-progress":
            walker.replace(params.get("Url"), params.get("Method") or "POST",
                           params.get("Twiml"))
