"""Flask's `session`, kept in the database (mfa/browser_sessions) instead of a signed cookie.

The cookie holds a random id and nothing else, so signing out, "sign out everywhere", a
lockout or a fraud report ends a session at once on every instance, and a copied or replayed
cookie opens nothing once its row is gone. Who is signed in (`user_id`) and when
(`signed_in_at`) are columns only the server writes; `session[...]` holds the sign-in flow
under way, the CSRF token and flashed messages.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask, Request, Response, session
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from edge import database_unavailable, is_database_outage
from ivr import webhook_urls
from mfa import browser_sessions, remembered_browsers
from mfa.browser_sessions import Limits
from mfa.unit_of_work import use_case

PRUNE_EVERY = timedelta(minutes=5)  # per process; one indexed DELETE
# Requests that never use the browser session: no query for them even when a cookie comes along
# (a page's styles and scripts, the JSON API, Twilio's webhooks).
NO_SESSION_PATHS = ("/static/", "/assets/", "/api/", "/device/", webhook_urls.PREFIX + "/")


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, data: dict | None = None, session_id: str | None = None, *,
                 user_id: str | None = None, signed_in_at: datetime | None = None,
                 last_seen_at: datetime | None = None, stale_cookie: bool = False):
        def on_update(s):
            s.modified = True
            s.accessed = True

        super().__init__(data, on_update)
        self.session_id = session_id
        self.user_id = user_id
        self.signed_in_at = signed_in_at
        self.last_seen_at = last_seen_at
        self.stale_cookie = stale_cookie  # the browser sent an id we no longer know: forget it
        self.new = session_id is None
        self.modified = False
        self.accessed = False
        self.rotated = False
        self.ended = False
        self.load_error: BaseException | None = None
        self.unused = False  # a path that never uses the session: nothing is read or written
        self.replaced_id: str | None = None  # a session id given up by regenerate(), ended on save

    def rotate(self, session_id: str, user_id: str, signed_in_at: datetime | None) -> None:
        """This browser now holds a new session (already written by the domain): nothing carries over."""
        self.clear()
        self.session_id, self.user_id, self.signed_in_at = session_id, user_id, signed_in_at
        self.last_seen_at = signed_in_at
        self.rotated = True
        self.replaced_id = None  # ended by the domain along with the rotation

    def regenerate(self) -> None:
        """Same contents under a new id, the old one ended: a cookie planted or read before the
        password was checked (session fixation) never sees the sign-in that follows."""
        if self.session_id is not None:
            self.replaced_id = self.session_id
        self.session_id = None
        self.new = True
        self.modified = True

    def end(self) -> None:
        """The row is gone (deleted by the domain); anything stored from now on starts a new session."""
        self.clear()
        self.session_id = self.user_id = self.signed_in_at = self.last_seen_at = None
        self.new = True
        self.ended = True


def current() -> ServerSession:
    return session  # type: ignore[return-value]


class DatabaseSessionInterface(SessionInterface):
    def __init__(self):
        self._next_prune: datetime | None = None

    @staticmethod
    def _limits(rt) -> Limits:
        return Limits(idle=timedelta(minutes=rt.settings.session_idle_minutes),
                      absolute=timedelta(hours=rt.settings.session_max_hours))

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        if request.path.startswith(NO_SESSION_PATHS):
            unused = ServerSession()
            unused.unused = True
            return unused
        session_id = request.cookies.get(self.get_cookie_name(app))
        if not session_id:
            return ServerSession()
        rt = app.extensions["mfa"]
        try:
            with rt.sessions() as db, use_case(db):
                row = browser_sessions.find(db, rt.services, session_id, self._limits(rt))
                if row is None:
                    return ServerSession(stale_cookie=True)
                return ServerSession(browser_sessions.data_of(row), session_id, user_id=row.user_id,
                                     signed_in_at=row.signed_in_at, last_seen_at=row.last_seen_at)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # Raised again from before_request, where the outage handler answers 503;
            # meanwhile the cookie is kept (a database blip must not sign anyone out).
            unavailable = ServerSession()
            unavailable.load_error = exc
            return unavailable

    def save_session(  # type: ignore[override]  # open_session only ever hands out a ServerSession
            self, app: Flask, session: ServerSession, response: Response) -> None:
        if session.load_error is not None or session.unused:
            return
        if session.session_id or session.stale_cookie:
            response.vary.add("Cookie")
        rt = app.extensions["mfa"]
        try:
            self._save(app, rt, session, response)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            # Too late for an error handler: the answer becomes the outage page in place.
            failed = database_unavailable(exc)
            response.status_code = failed.status_code
            response.set_data(failed.get_data())
            response.headers.pop("Location", None)
            for name in ("Content-Type", "Retry-After"):
                if name in failed.headers:
                    response.headers[name] = failed.headers[name]

    def _save(self, app: Flask, rt, session: ServerSession, response: Response) -> None:
        svc = rt.services
        data = dict(session)
        if session.session_id is None:
            if data:
                with rt.sessions() as db, use_case(db):
                    self._prune_now_and_then(db, rt)
                    if session.replaced_id is not None:
                        browser_sessions.end(db, session.replaced_id)
                    session.session_id = browser_sessions.create(db, svc, data)
                self._set_cookie(app, response, session.session_id)
            elif session.stale_cookie or session.ended:
                self._delete_cookie(app, response)
            return
        if not data and session.user_id is None:  # nothing left to remember
            with rt.sessions() as db, use_case(db):
                browser_sessions.end(db, session.session_id)
            self._delete_cookie(app, response)
            return
        due = session.last_seen_at is None or svc.clock.now() - session.last_seen_at >= browser_sessions.TOUCH_EVERY
        if session.modified or due:
            with rt.sessions() as db, use_case(db):
                alive = browser_sessions.touch(db, svc, session.session_id, data if session.modified else None)
            if not alive:  # ended meanwhile (signed out elsewhere, or rotated by another request)
                self._delete_cookie(app, response)
                return
        if session.rotated:
            self._set_cookie(app, response, session.session_id)

    def _prune_now_and_then(self, db, rt) -> None:
        now = rt.services.clock.now()
        if self._next_prune is not None and self._next_prune > now:
            return
        self._next_prune = now + PRUNE_EVERY
        browser_sessions.prune(db, rt.services, self._limits(rt))
        remembered_browsers.prune(db, rt.services)  # past their end: they skip nothing, so they go

    def _set_cookie(self, app: Flask, response: Response, session_id: str) -> None:
        # No Expires: the cookie goes when the browser closes; the server enforces the limits.
        response.set_cookie(self.get_cookie_name(app), session_id, path="/", secure=self.get_cookie_secure(app),
                            httponly=True, samesite="Lax")

    def _delete_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(self.get_cookie_name(app), path="/", secure=self.get_cookie_secure(app),
                               httponly=True, samesite="Lax")
