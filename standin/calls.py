"""A call's life on the simulated network: dialling, ringing, answering, ending, and the status
callbacks Twilio sends along the way (NOTES.md section 1.5).

Runs on the worker thread, except `end`, which a REST request may also call: it then queues the
final callback instead of sending it from inside the REST handler.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from .records import SimCall, utcnow
from .walker import CallWalker

if TYPE_CHECKING:
    from .network import Network

API_VERSION = "2010-04-01"
DEFAULT_RING_SECONDS = 60
DEFAULT_TIME_LIMIT = 4 * 60 * 60  # Twilio's default maximum call length
EVENT_CALL_STATUS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}
# How long detection listens before it decides (MachineDetectionDuration, ms): a short "hello"
# then silence; a greeting past the 2.4 s speech threshold; a greeting heard to its beep; a
# long "hello" then the 1.2 s of silence that ends it.
DETECTION_MILLISECONDS = {
    "human": 1900, "fax": 2200, "machine_start": 3100, "machine_end_beep": 11200,
    "machine_end_other": 6400,
}


def answered_by(party: str, machine_detection: str) -> str:
    """What Twilio's detection reports for who answered ("long-greeting" is a person whose
    long "hello" sounds like a voicemail greeting; Enable stops at the first impression)."""
    if party in ("human", "fax"):
        return party
    if machine_detection != "DetectMessageEnd":
        return "machine_start"
    return "machine_end_other" if party == "long-greeting" else "machine_end_beep"


def detects_in_background(call: SimCall) -> bool:
    """AsyncAmd=true: the TwiML runs at once, the result goes to AsyncAmdStatusCallback."""
    return (call.params.get("AsyncAmd") or "").lower() == "true"


def requested_events(call: SimCall) -> set[str]:
    """Each StatusCallbackEvent field may hold one event or several separated by spaces."""
    events = set()
    for value in call.params.get("StatusCallbackEvent") or []:
        events.update(value.split())
    return events or {"completed"}


class CallLine:
    """The walker's view of one call (see walker.Line)."""

    def __init__(self, progress: CallProgress, call: SimCall):
        self._progress = progress
        self._call = call

    def is_live(self) -> bool:
        return self._call.status == "in-progress"

    def record(self, *event: object) -> None:
        self._progress.net.record(self._call, event)

    def fetch(self, url: str, method: str, extra: dict[str, str]) -> tuple[str | None, str]:
        params = self._progress.call_params(
            self._call, with_answered_by=not detects_in_background(self._call)) | extra
        reply = self._progress.net.webhooks.send(method, url, params)
        return (reply.text if reply.ok else None), reply.problem

    def fetch_audio(self, url: str) -> tuple[int | None, bytes]:
        return self._progress.net.webhooks.fetch_audio(url)

    def fetch_words(self, url: str) -> tuple[str, str] | None:
        return self._progress.net.webhooks.fetch_words(url)

    def end(self, status: str) -> None:
        self._progress.end(self._call, status)

    def arm_gather_timer(self, seconds: float, token: tuple[int, int]) -> None:
        progress, sid = self._progress, self._call.sid

        def lapse() -> None:
            walker = progress.walkers.get(sid)
            if walker is not None:
                walker.lapse_if_current(token)

        progress.after(sid, "gather", seconds, lapse)


class CallProgress:
    def __init__(self, net: Network):
        self.net = net
        self.walkers: dict[str, CallWalker] = {}

    def after(self, sid: str, name: str, seconds: float, job) -> None:
        """Real-time mode only: run job on the worker once seconds have passed."""
        self.net.timers.start(sid, name, seconds, lambda: self.net.worker.submit(job))

    # ---- lifecycle ----

    def dial(self, call: SimCall) -> None:
        if call.ended:
            return  # canceled over REST before we got to it
        self.status_callback(call, "initiated")
        behaviour = self.net.behaviour_of(call.to)
        if behaviour == "failed":
            self.end(call, "failed")
            return
        with self.net.lock:
            if call.ended:
                return
            call.status = "ringing"
            self.net.touch(call)
        self.status_callback(call, "ringing")
        if behaviour in ("busy", "no-answer"):
            self.end(call, behaviour)
        elif behaviour in ("machine", "fax"):
            self.answer(call, behaviour)
        else:
            ring_seconds = int(call.params.get("Timeout") or DEFAULT_RING_SECONDS)
            self.after(call.sid, "ring", ring_seconds, lambda: self.ring_out(call))

    def answer(self, call: SimCall, party: str = "human") -> None:
        heard_as = party
        if party == "human" and self.net.behaviour_of(call.to) == "long-greeting":
            heard_as = "long-greeting"
        detected = None
        with self.net.lock:
            if call.status != "ringing":
                return
            call.status = "in-progress"
            call.started_at = utcnow()
            detection = call.params.get("MachineDetection")
            # Twilio ignores MachineDetection when SendDigits is set.
            if detection and not call.params.get("SendDigits"):
                detected = answered_by(heard_as, detection)
                if not detects_in_background(call):
                    call.answered_by = detected  # the answer webhook waits for it
            call.transcript.append(("answered", party))
            self.net.touch(call)
        self.net.timers.cancel(call.sid, "ring")
        limit = int(call.params.get("TimeLimit") or DEFAULT_TIME_LIMIT)
        self.after(call.sid, "time-limit", limit, lambda: self.time_out(call))
        self.status_callback(call, "answered")
        if call.params.get("SendDigits"):
            self.net.record(call, ("send-digits", call.params["SendDigits"]))
        walker = CallWalker(CallLine(self, call))
        self.walkers[call.sid] = walker
        walker.begin(
            url=call.params.get("Url"),
            method=call.params.get("Method") or "POST",
            twiml=call.params.get("Twiml"),
            fallback_url=call.params.get("FallbackUrl"),
            fallback_method=call.params.get("FallbackMethod") or "POST",
        )
        if detected and detects_in_background(call):
            self.detected_later(call, detected)

    def detected_later(self, call: SimCall, result: str) -> None:
        """Background detection decides while the TwiML runs: in real time after its duration,
        in tests as soon as the answer's TwiML is waiting (a prompt playing, a gather listening)."""
        seconds = DETECTION_MILLISECONDS[result] / 1000
        if self.net.realtime:
            self.after(call.sid, "machine-detection", seconds,
                       lambda: self.report_detection(call, result))
        else:
            self.report_detection(call, result)

    def report_detection(self, call: SimCall, result: str) -> None:
        if call.status != "in-progress":
            return  # the call ended before detection finished
        milliseconds = DETECTION_MILLISECONDS[result]
        with self.net.lock:
            call.answered_by = result  # the Call resource shows it (Twilio warning 21262)
            self.net.touch(call)
        self.net.record(call, ("machine-detection", result, milliseconds))
        url = call.params.get("AsyncAmdStatusCallback")
        if not url:
            return
        params = {"AccountSid": call.account_sid, "CallSid": call.sid, "AnsweredBy": result,
                  "MachineDetectionDuration": str(milliseconds)}
        self.net.webhooks.send(call.params.get("AsyncAmdStatusCallbackMethod") or "POST",
                               urljoin(call.params.get("Url") or "", url), params)

    def ring_out(self, call: SimCall) -> None:
        if call.status == "ringing":
            self.net.record(call, ("ring-out",))
            self.end(call, "no-answer")

    def time_out(self, call: SimCall) -> None:
        if call.status == "in-progress":
            self.net.record(call, ("time-limit",))
            self.end(call, "completed")

    def end(self, call: SimCall, status: str) -> None:
        with self.net.lock:
            if call.ended:
                return  # a call ends once; later hang-ups change nothing
            call.status = status
            call.ended_at = utcnow()
            self.net.touch(call)
        self.net.timers.cancel(call.sid)
        self.walkers.pop(call.sid, None)
        if self.net.worker.on_worker_thread():
            self.status_callback(call, "completed")
        else:
            self.net.worker.submit(lambda: self.status_callback(call, "completed"),
                                   settle=self.net.settle_seconds)

    # ---- webhook parameters ----

    def call_params(self, call: SimCall, call_status: str | None = None, *,
                    with_answered_by: bool = True) -> dict[str, str]:
        params = {
            "AccountSid": call.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": call_status or call.status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }
        if call.answered_by and with_answered_by:
            params["AnsweredBy"] = call.answered_by
        return params

    def status_callback(self, call: SimCall, event: str) -> None:
        url = call.params.get("StatusCallback")
        if not url or (event != "completed" and event not in requested_events(call)):
            return
        call_status = EVENT_CALL_STATUS.get(event, call.status)
        with self.net.lock:
            sequence = call.sequence_number
            call.sequence_number += 1
        params = self.call_params(call, call_status) | {
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(sequence),
            "Timestamp": format_datetime(utcnow()),
        }
        if event == "completed":
            params["CallDuration"] = str(call.duration or 0)
        reply = self.net.webhooks.send(call.params.get("StatusCallbackMethod") or "POST",
                                       url, params)
        with self.net.lock:
            call.callbacks.append((call_status, reply.status))
            self.net.touch(call)
