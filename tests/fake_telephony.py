"""A telephone provider for domain tests: counts what it is asked to send, fails on request.

Not a mock of the thing under test: the domain sees the same interface as ivr/provider.py
(mfa/telephony.Telephony), and the tests assert what the domain stored and answered.
"""
from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mfa.telephony import Telephony


class FakeTelephony:
    def __init__(self, fail: Exception | None = None, during=None):
        self.fail = fail  # raised after the request "reached" the provider
        self.during = during  # during(what, sid): while the provider is busy sending (checks from outside)
        self.texts: list[tuple[str, str]] = []  # (to, code)
        self.calls: list[tuple[str, str]] = []  # (to, challenge id)
        self.notices: list[tuple[str, str]] = []  # (to, change): change notifications
        self.ended: list[str] = []
        self._lock = threading.Lock()

    def send_code_sms(self, to: str, code: str, language: str) -> str:
        return self._send(self.texts, (to, code), "SM")

    def send_notice_sms(self, to: str, change: str, language: str, last_digits: str | None) -> str:
        return self._send(self.notices, (to, change), "SM")

    def place_verification_call(self, to: str, challenge_id: str) -> str:
        return self._send(self.calls, (to, challenge_id), "CA")

    def end_call(self, call_sid: str) -> None:
        with self._lock:
            self.ended.append(call_sid)

    def _send(self, log: list, what: tuple, prefix: str) -> str:
        sid = prefix + uuid.uuid4().hex
        if self.during is not None:
            self.during(what, sid)
        with self._lock:
            log.append(what)
        if self.fail is not None:
            raise self.fail
        return sid


if TYPE_CHECKING:
    _fills_the_protocol: Telephony = FakeTelephony()  # mypy checks it is the same interface


def use_fake(runtime, fake: FakeTelephony):
    """Put `fake` in place of the app's provider (the edges read runtime.services per request)."""
    runtime.services = dataclasses.replace(runtime.services, telephony=fake)
    return runtime.services
