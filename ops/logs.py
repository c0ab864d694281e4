"""Logs for operators: a request id on every request, JSON lines in production, numbers masked.

X-Request-Id is taken from the request when it looks like an id (a proxy's, say), made up
otherwise, echoed on the response and written on every log line of that request.

Phone numbers reach messages masked already (mfa.phones.mask); the formatters here are a
safety net that masks any digit run that looks like a phone number before a line is
written. They mask the written line only, never the log record, so tests that read
records (caplog) still see exactly what the code logged.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, g, has_request_context, request

from mfa.phones import mask_digits

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# +44 7700 900123, +447700900123, 447700900123 (E.164 without its plus), 07700900123 (UK national).
PHONE_LIKE = re.compile(r"(?<![\w+])(?:\+[1-9](?:[ -]?\d){7,14}|[1-9]\d{9,14}|0\d{9,10})(?!\w)")
ACCESS_FIELDS = ("client", "method", "path", "status", "duration_ms")

access_log = logging.getLogger("mfa.access")
startup_log = logging.getLogger("mfa.startup")
_installed: logging.Handler | None = None


def mask_phone_numbers(text: str) -> str:
    """Every digit of a phone-like run but the last two becomes a bullet."""

    return PHONE_LIKE.sub(lambda match: mask_digits(match.group(0), keep=2), text)


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id (+ access fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_phone_numbers(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if isinstance(path := line.get("path"), str):  # the caller chose it: masked like the message
            line["path"] = mask_phone_numbers(path)
        if record.exc_info:
            line["exception"] = mask_phone_numbers(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = current_request_id()
        return mask_phone_numbers(super().format(record) + (f" [request_id={rid}]" if rid else ""))


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (gunicorn and test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def install_handler(log_format: str | None) -> None:
    """Send every log line to stderr in `log_format`; None leaves logging to the host.

    Idempotent: an app made twice in one process (tests, tools) still writes each line once.
    """
    global _installed
    if log_format is None:
        return
    remove_handler()
    root = logging.getLogger()
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # The Twilio SDK logs every request's headers at INFO: noise, and a cost on every call placed.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    _installed = handler


def remove_handler() -> None:
    global _installed
    if _installed is not None:
        logging.getLogger().removeHandler(_installed)
        _installed = None


def register(app: Flask, log_format: str | None) -> None:
    install_handler(log_format)

    def _request_id():
        g.ops_started = time.perf_counter()
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = offered if REQUEST_ID_RE.fullmatch(offered) else uuid.uuid4().hex

    # First of all before_request hooks, whoever registered theirs earlier: latency and
    # the request id then cover everything, the webhook signature check included.
    app.before_request_funcs.setdefault(None, []).insert(0, _request_id)

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id") or uuid.uuid4().hex
        if access_log.isEnabledFor(logging.INFO):
            duration_ms = round((time.perf_counter() - g.get("ops_started", time.perf_counter())) * 1000, 1)
            # remote_addr is the person's address once ProxyFix has read TRUSTED_PROXIES' X-Forwarded-For.
            # The path is masked before it meets the status: "+447700900123 401" would read as one number.
            access_log.info("%s %s %s %s %.1fms", request.remote_addr, request.method, mask_phone_numbers(request.path),
                            response.status_code, duration_ms,
                            extra={"client": request.remote_addr, "method": request.method, "path": request.path,
                                   "status": response.status_code, "duration_ms": duration_ms})
        return response


def announce_telephony(provider: str, api_base_url: str, account_sid: str) -> None:
    """One start-up line saying where calls and texts go: an operator pointing production at the
    stand-in (or the stand-in's settings at Twilio) sees it at once. Never the token."""
    parts = urlsplit(api_base_url)
    # A user:password@, a query and a fragment left out: any of them could carry a credential.
    where = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], path=parts.path.rstrip("/"),
                                      query="", fragment=""))
    startup_log.info("telephony: %s at %s (account %s)", provider, where, mask_account_sid(account_sid))


def mask_account_sid(sid: str) -> str:
    """AC…1234: enough to tell accounts apart, not enough to use one."""
    return f"{sid[:2]}…{sid[-4:]}" if len(sid) > 8 else f"{sid[:2]}…"
