"""The HTTP transport under the twilio SDK: no hidden retries, and each failure told apart by
whether Twilio can have received the request.

Creating a call or a text is not idempotent (Twilio error 20500: a retried create may reach the
person twice), so the provider may retry only what never left this machine. This layer says
which is which; the provider (ivr/provider.py) decides what to do about it.
"""
from __future__ import annotations

import json
import os

import requests
from requests.adapters import HTTPAdapter
from twilio.http.http_client import TwilioHttpClient
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

# requests' own default, spelled out: urllib3 must never resend a request by itself.
NO_RETRIES = Retry(total=0, read=False, redirect=False)


class NotSent(Exception):
    """No connection was made (DNS failure, refused, connect time-out): Twilio saw nothing."""


class MaybeSent(Exception):
    """The request may have reached Twilio (read time-out, dropped or broken answer)."""

    def __init__(self, reason: str, timeout: bool = False):
        super().__init__(reason)
        self.timeout = timeout


class NotJson(Exception):
    """Twilio's API always answers JSON; anything else came from something that is not Twilio
    (a proxy, a wrong TWILIO_API_BASE_URL) or is broken."""

    def __init__(self, status: int):
        super().__init__(f"HTTP {status} with a body that is not JSON")
        self.status = status


def never_sent(exc: requests.RequestException) -> bool:
    """True only when the connection itself failed, before any byte of the request was sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return False
    cause = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", cause)  # requests wraps urllib3's MaxRetryError(reason=...)
    # NameResolutionError is a NewConnectionError; both are ConnectTimeoutErrors in urllib3 2.
    return isinstance(cause, (NewConnectionError, ConnectTimeoutError))


class StrictTwilioHttpClient(TwilioHttpClient):
    """TwilioHttpClient with retries off for http and https, and failures classified."""

    def __init__(self, timeout: float):
        super().__init__(timeout=timeout)
        for prefix in ("https://", "http://"):  # http: the local stand-in
            self.session.mount(prefix, HTTPAdapter(max_retries=NO_RETRIES,
                                                   pool_maxsize=min(32, (os.cpu_count() or 1) + 4)))

    def request(self, *args, **kwargs):
        try:
            response = super().request(*args, **kwargs)
        except requests.RequestException as exc:
            if never_sent(exc):
                raise NotSent(type(exc).__name__) from exc
            raise MaybeSent(type(exc).__name__, isinstance(exc, requests.exceptions.Timeout)) from exc
        if response.status_code != 429:  # 429 is retried whatever its body says
            try:
                json.loads(response.text)
            except ValueError:
                raise NotJson(response.status_code) from None
        return response
