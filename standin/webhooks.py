"""Signed HTTP requests to the customer app, made the way Twilio makes them.

POST sends the parameters form-encoded and signs URL + sorted params; GET puts the parameters
in the query string and signs that full URL alone (NOTES.md section 2.1). Each request carries
a fresh I-Twilio-Idempotency-Token.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

# Left unescaped in GET query strings: these pass through `requests` untouched and Werkzeug's
# request.url shows them unescaped, so the URL an app rebuilds is byte for byte the one signed.
QUERY_SAFE = "!$'()*,/:;?@[]~"
# Twilio allows 10 s to connect and 15 s for the whole response (error 11205).
TIMEOUT = (10.0, 15.0)
USER_AGENT = "TwilioProxy/1.1"
MAX_WORDS = 1000  # characters of a recording's words the dev phone shows


@dataclass(frozen=True)
class Reply:
    status: int | None  # None when the app could not be reached at all
    text: str
    problem: str = ""  # why the exchange failed, for the call transcript

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def with_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    query = urlencode(params, quote_via=quote_plus, safe=QUERY_SAFE)
    return url + ("&" if "?" in url else "?") + query


def root_cause(exc: BaseException) -> str:
    """The innermost reason (e.g. "[SSL: CERTIFICATE_VERIFY_FAILED] ... self-signed certificate"),
    not requests' long "HTTPSConnectionPool(...): Max retries exceeded" wrapper."""
    reason: BaseException = exc
    for _ in range(10):  # requests → urllib3 → ssl is four deep; never loop on a cycle
        inner = getattr(reason, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in reason.args if isinstance(arg, BaseException)), None)
        inner = inner or reason.__cause__
        if inner is None or inner is reason:
            break
        reason = inner
    return str(reason) or type(reason).__name__


class WebhookClient:
    def __init__(self, auth_token: str):
        self._validator = RequestValidator(auth_token)

    def send(self, method: str, url: str, params: dict[str, str]) -> Reply:
        method = "GET" if str(method).upper() == "GET" else "POST"
        headers = {
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
        }
        try:
            if method == "GET":
                full_url = with_query(url, params)
                headers["X-Twilio-Signature"] = self._validator.compute_signature(full_url, {})
                response = requests.get(full_url, headers=headers, timeout=TIMEOUT,
                                        allow_redirects=False)
            else:
                headers["X-Twilio-Signature"] = self._validator.compute_signature(url, params)
                response = requests.post(url, data=params, headers=headers, timeout=TIMEOUT,
                                         allow_redirects=False)
        except requests.RequestException as exc:
            # Real Twilio shows this only in its console's debugger; say it where an operator looks.
            problem = f"11205 HTTP connection failure: {method} {url}: {root_cause(exc)}"
            log.warning("stand-in webhook failed: %s", problem)
            return Reply(None, "", problem)
        problem = "" if 200 <= response.status_code < 300 else (
            f"11200 HTTP retrieval failure: {method} {url} answered {response.status_code}")
        if problem:  # e.g. 403: the app and the stand-in disagree on the account or the token
            log.warning("stand-in webhook failed: %s", problem)
        return Reply(response.status_code, response.text, problem)

    @staticmethod
    def fetch_words(url: str) -> tuple[str, str] | None:
        """What a <Play> recording says and its language, when the app serves it beside the audio
        (<name>.txt for <name>.wav, as this project's app does; Twilio itself never asks)."""
        parts = urlsplit(url)
        if not parts.path.endswith(".wav"):
            return None
        try:
            response = requests.get(urlunsplit(parts._replace(path=parts.path[:-4] + ".txt")), timeout=TIMEOUT,
                                    headers={"User-Agent": USER_AGENT})
        except requests.RequestException:
            return None
        if not response.ok or response.headers.get("Content-Type", "").split(";")[0] != "text/plain":
            return None
        words = response.text.strip()[:MAX_WORDS]
        return (words, response.headers.get("Content-Language", "")) if words else None

    @staticmethod
    def fetch_audio(url: str) -> tuple[int | None, bytes]:
        """Twilio fetches <Play> media with a plain GET: the HTTP status (None when unreachable)
        and the body, from which the walker reads how long the audio plays."""
        try:
            response = requests.get(url, timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})
        except requests.RequestException:
            return None, b""
        return response.status_code, response.content if response.ok else b""
