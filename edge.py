"""What every HTTP edge (API, pages, webhooks) shares: the runtime and the request's DB session."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from sqlalchemy import event, exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ivr import webhook_urls
from mfa import data_key_check
from mfa.services import Services
from mfa.vault import Vault
from models.database import make_engine, make_session_factory
from settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    services: Services
    prompt_voice: Any = None  # ivr.twiml.PromptVoice: recorded prompts, loaded once
    outage_log: "OutageLog" = field(default_factory=lambda: OutageLog())
    sleep: Any = time.sleep  # the only way a request thread waits (create_app's SLEEP in tests)


def runtime() -> Runtime:
    return current_app.extensions["mfa"]


def services() -> Services:
    return runtime().services


def db() -> Session:
    """One session per request, closed when the request ends."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def client_ip() -> str | None:
    return request.remote_addr


# One year, subdomains too: browsers then refuse plain http for this host (production only).
HSTS = "max-age=31536000; includeSubDomains"


def install(app: Flask, rt: Runtime) -> None:
    app.extensions["mfa"] = rt
    # More specific than any handler for Exception, so it wins wherever the error is raised.
    for outage in OUTAGE_ERRORS:
        app.register_error_handler(outage, database_error)
    # After an outage the first new connection is the sign that the database is back.
    event.listen(rt.engine, "connect", lambda _dbapi, _record: rt.outage_log.ended())

    if rt.settings.production:
        @app.after_request
        def _strict_transport(response):
            # Every answer: pages, API, webhooks, health, errors and static files alike.
            response.headers["Strict-Transport-Security"] = HSTS
            return response

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            try:
                session.close()
            except Exception as exc:
                if not is_database_outage(exc):
                    raise
                # The connection died under an open transaction (its rollback failed): the
                # answer is already made, so drop the connection rather than turn it into a 500.
                session.invalidate()


# --- at start: stored secrets that DATA_KEY cannot decrypt stop the server ----------------


class DataKeyRefused(SystemExit):
    """Printed as one line on stderr with exit status 1, as a settings error stops start-up."""


def check_data_key_at_start(settings: Settings, warn=None) -> None:
    """Stop the server when stored secrets do not decrypt with DATA_KEY.

    Every stored secret is tried, not a sample: Fernet tokens do not name their key, so a key
    missing for rows written in a middle era (neither oldest, newest nor highest id) would slip
    through a sample, and every one of those people's checks would then fail. It is one read of
    each encrypted column, once per start. A database that cannot be read now (down, or not
    migrated yet) does not stop it: the check is about keys, and /readyz samples once it answers.
    """
    warn = warn or log.warning
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as db:
            result = data_key_check.everything(db, Vault(settings.data_keys))
    except sa_exc.SQLAlchemyError as exc:
        warn("DATA_KEY not checked at start: the database cannot be read (%s); /readyz checks it once it can",
             type(exc).__name__)
        return
    finally:
        engine.dispose()
    problem = result.problem()
    if problem is not None:
        raise DataKeyRefused(problem)


# --- the database unreachable: 503, never a trace, and back by itself ----------------------
# The engines ping a pooled connection before using it (pool_pre_ping), so once the database
# answers again the next request simply gets a fresh connection: nothing here has to reset.

log = logging.getLogger("mfa.edge")

UNAVAILABLE = "The service is unavailable; try again in a minute."
RETRY_AFTER_SECONDS = 30

try:  # the PostgreSQL driver's own errors, should one escape SQLAlchemy's wrapping
    import psycopg

    _DRIVER_OUTAGES: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - SQLite-only installs
    _DRIVER_OUTAGES = ()

OUTAGE_ERRORS: tuple[type[Exception], ...] = (sa_exc.DBAPIError, sa_exc.TimeoutError, *_DRIVER_OUTAGES)


def is_database_outage(exc: BaseException | None) -> TypeGuard[BaseException]:
    """Connection refused or lost, pool exhausted, server shutting down, lock or statement timeout.

    Not an outage: IntegrityError, DataError, ProgrammingError - those are bugs and stay 500s.
    """
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, *_DRIVER_OUTAGES)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


class OutageLog:
    """At most one WARNING line a minute while the database is down, with how many requests
    were answered 503 since the last line. No trace: the driver's first line names the cause
    (connection refused, timeout) and a trace per request would bury everything else."""

    def __init__(self, what: str = "database", interval: float = 60.0, now=time.monotonic,
                 verb: str = "answering 503"):
        self.what, self.verb = what, verb
        self.interval = interval
        self._now = now
        self._lock = threading.Lock()
        self._last: float | None = None
        self._since_last = 0
        self._warned = False  # a warning is out that no "reachable again" has answered yet

    def report(self, exc: BaseException) -> None:
        with self._lock:
            now = self._now()
            if self._last is not None and now - self._last < self.interval:
                self._since_last += 1
                return
            since_last, self._since_last, self._last, self._warned = self._since_last, 0, now, True
        more = f"; {since_last} more failures since the last line" if since_last else ""
        log.warning("%s unavailable, %s (%s: %s)%s", self.what, self.verb, type(exc).__name__, _cause(exc), more)

    def ended(self) -> None:
        """A new connection succeeded. Stragglers failing just after still count towards the
        next minute's line, so a recovery that flaps for a second does not flood the log."""
        with self._lock:
            if not self._warned:
                return
            since_last, self._since_last, self._warned = self._since_last, 0, False
        log.info("%s reachable again (%d more failures since the last warning)", self.what, since_last)


def _cause(exc: BaseException) -> str:
    # Only the driver's message: SQLAlchemy's own text carries the statement and its parameters.
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0][:200] if lines else type(cause).__name__


def database_error(exc: BaseException):
    if is_database_outage(exc):
        return database_unavailable(exc)
    # A bug (IntegrityError, ProgrammingError): answered like any other crash, trace and all.
    crash = current_app.error_handler_spec[None][None].get(Exception)
    if crash is None:
        raise exc
    return crash(exc)


def database_unavailable(exc: BaseException):
    """The answer to any request that met the database down, in the form its caller reads."""
    runtime().outage_log.report(exc)
    path = request.path
    callbacks = (webhook_urls.VOICE_STATUS, webhook_urls.VOICE_AMD)  # Twilio reads no TwiML from these
    if path.startswith(webhook_urls.PREFIX + "/voice/") and not path.endswith(callbacks):
        # The caller hears a polite goodbye, never Twilio's "application error".
        from ivr import twiml

        return Response(twiml.goodbye("en-GB", runtime().prompt_voice), 200, mimetype="text/xml")
    if path.startswith(webhook_urls.PREFIX + "/"):
        # Status callbacks: Twilio does not retry them, but a 503 shows in its debugger (11200),
        # which tells the operator a delivery report was lost; a 2xx would hide that.
        response = Response("unavailable", 503, mimetype="text/plain")
    elif path.startswith(("/api/", "/device/")):  # the JSON APIs: relying applications and phone apps
        response = jsonify({"error": "unavailable", "message": UNAVAILABLE})
    else:
        try:
            response = Response(render_template("unavailable.html", message=UNAVAILABLE), mimetype="text/html")
        except Exception:  # the layout itself needs the database (a signed-in header): plain page
            response = Response(f'<!DOCTYPE html><html lang="en-GB"><title>Unavailable</title><p>{UNAVAILABLE}</p>',
                                mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
