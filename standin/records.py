"""What the simulated network remembers about each call and message.

Plain dataclasses: the network mutates them under its lock and hands out copies, so a test
can read a SimCall without racing the worker thread that is still walking the call.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

CALL_STATUSES = (
    "queued", "ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled",
)
ENDED_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# "long-greeting": a person who answers with a long "hello" that machine detection mistakes for
# a voicemail greeting; like "ring", they answer when the test (or /phone) says so.
BEHAVIOURS = ("ring", "busy", "no-answer", "failed", "machine", "fax", "long-greeting")
# What may follow a ("gather", ...) event while that <Gather> still listens: its nested prompts,
# keys that did not complete it, a background detection result.
WHILE_LISTENING = frozenset({
    "say", "play", "words", "play-digits", "pause", "digits-sent", "digits-ignored", "machine-detection",
})


def new_sid(prefix: str) -> str:
    """Twilio sids are a two-letter type prefix and 32 lower-case hex digits."""
    return prefix + secrets.token_hex(16)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class SimMessage:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    status: str
    messaging_service_sid: str | None
    created_at: datetime
    status_callback: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None
    params: dict = field(default_factory=dict)
    # (MessageStatus, http status or None when unreachable) per status callback sent
    callbacks: list = field(default_factory=list)

    def snapshot(self) -> SimMessage:
        return copy.deepcopy(self)


@dataclass
class SimCall:
    """One outbound call. `transcript` is what happened on the line, as tuples:

    ("answered", "human"|"machine"|"fax")  ("send-digits", "W1234#")
    ("say", text, language, voice)         ("play", url, http_status_or_None)
    ("words", text, language)              # after a "play": what it says, when the app serves that
    ("play-digits", "ww12")                ("pause", seconds)
    ("gather", {attributes as written})    ("digits-sent", keys)  # the callee pressed keys
    ("digits-ignored", keys)               # pressed while no <Gather> listened
    ("gather-timeout",)                    ("no-input",)  # gather fell through
    ("action", url, digits)                ("redirect", url)
    ("redirect-by-api", url_or_"twiml")    ("fallback", url)
    ("hangup",)  ("reject", reason)        ("end-of-twiml",)  ("callee-hangup",)
    ("declined",)  ("ring-out",)  ("ended-by-api", status)  ("time-limit",)
    ("error", text)   # what Twilio would report as an application error
    ("wait", seconds, why)  # simulated time passing: why is "<Say>", "<Play>", "<Pause>",
                            # "inter-digit timeout", "no input" (prompts + timeout) or
                            # "caller pause" (Network.pause)
    ("machine-detection", answered_by, milliseconds)  # AsyncAmd result, as posted
    """

    sid: str
    account_sid: str
    to: str
    from_: str
    status: str
    params: dict
    created_at: datetime
    transcript: list = field(default_factory=list)
    answered_by: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime | None = None
    # (CallStatus, http status or None when unreachable) per status callback sent
    callbacks: list = field(default_factory=list)
    sequence_number: int = 0

    @property
    def ended(self) -> bool:
        return self.status in ENDED_CALL_STATUSES

    @property
    def said(self) -> list[str]:
        """Every <Say> text spoken on the call, in order."""
        return [event[1] for event in self.transcript if event[0] == "say"]

    def events(self, kind: str) -> list[tuple]:
        return [event for event in self.transcript if event[0] == kind]

    def current_gather(self) -> tuple[dict, list[str]] | None:
        """The <Gather> listening now: its attributes and its <Say> texts; None if none is."""
        if self.status != "in-progress":
            return None
        for index in range(len(self.transcript) - 1, -1, -1):
            event = self.transcript[index]
            if event[0] == "gather":
                return event[1], [e[1] for e in self.transcript[index + 1:] if e[0] == "say"]
            if event[0] not in WHILE_LISTENING:
                return None
        return None

    def simulated_seconds(self, since: int = 0, until: int | None = None) -> float:
        """Simulated time that passed over transcript[since:until] (the "wait" events)."""
        return sum(float(event[1]) for event in self.transcript[since:until]
                   if event[0] == "wait")

    @property
    def duration(self) -> int | None:
        if self.ended_at is None:
            return None
        if self.started_at is None:
            return 0
        return int((self.ended_at - self.started_at).total_seconds())

    def snapshot(self) -> SimCall:
        return copy.deepcopy(self)
