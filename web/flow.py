"""What a browser session remembers: who is signed in, and the sign-in under way.

The session lives on the server (web/session_store.py); the cookie is a random id. Who is
signed in and since when are kept in columns only the server writes. Only ids and modes go
in the session data: never a code or a secret (three exceptions, all encrypted: a new app password,
between its creation and the one page that shows it, see web/account.py; a new set of recovery
codes, likewise, see web/recovery.py; and a phone app's set-up link while its page shows it as a
QR code, see web/registration.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import g, session

from edge import db, services
from mfa import approvals, authentications, browser_sessions, cancellation
from mfa.calls import end_calls
from mfa.errors import NotFound
from mfa.unit_of_work import use_case
from models import Authentication, User
from web import session_store

RECENT_SIGN_IN = timedelta(minutes=10)
# In the session data: this sign-in skipped the second factor on a remembered browser.
REMEMBERED_SIGN_IN = "remembered_sign_in"


def start_flow(auth: Authentication, purpose: str, mode: str | None = None, method_id: str | None = None) -> None:
    """purpose: "sign_in" (password first), "entra" (Microsoft Entra sent the person, web/entra.py) or
    "change" (security info for a signed-in person).

    A sign-in flow, Entra's too, moves to a new session id: whoever held the old cookie (one planted
    in the person's browser, say) cannot follow it to its approval.
    """
    if purpose != "change":
        session_store.current().regenerate()
    session["flow"] = {"auth": auth.id, "purpose": purpose, "mode": mode, "method": method_id}


def flow() -> dict | None:
    return session.get("flow")


def set_mode(mode: str, method_id: str | None = None, **extra) -> None:
    current = dict(session.get("flow") or {})
    current.update(mode=mode, method=method_id, **extra)
    session["flow"] = current


def end_flow() -> None:
    session.pop("flow", None)


def spend_approval(auth: Authentication, purpose: str) -> approvals.Spent:
    """Turn the approved sign-in into what the flow asked for, once (AlreadyUsed otherwise).

    A sign-in gives this browser a new session id (nothing carried over from before).
    """
    current = session_store.current()
    with use_case(db()):
        # The session this browser holds now (or the one it gave up at the password step this request).
        held = current.session_id if current.session_id is not None else current.replaced_id
        spent = approvals.spend(db(), services(), auth, purpose, held, current.user_id)
    if spent.session_id is not None:
        current.rotate(spent.session_id, auth.user_id, spent.signed_in_at)
        g.pop("csrf_token", None)  # Flask-WTF's per-request copy: the new session makes its own
    return spent


def signed_in_user_id() -> str | None:
    return getattr(session, "user_id", None)


def current_session_id() -> str | None:
    return getattr(session, "session_id", None)


def signed_in_user() -> User | None:
    user_id = signed_in_user_id()
    return db().get(User, user_id) if user_id else None


def current_auth() -> Authentication | None:
    """The sign-in this browser's flow is about, or None (no flow, or its sign-in is gone)."""
    current = flow()
    if not current:
        return None
    try:
        with use_case(db()):
            return authentications.get(db(), services(), current["auth"])
    except NotFound:
        end_flow()
        return None


def signed_in_recently() -> bool:
    """Signed in within 10 minutes, as the server recorded it (never from the cookie).

    A sign-in that skipped the second factor on a remembered browser never counts: changing
    security info always asks for the second step (web/remember_browser.py)."""
    when: datetime | None = getattr(session, "signed_in_at", None)
    if when is None or session.get(REMEMBERED_SIGN_IN):
        return False
    return services().clock.now() - when < RECENT_SIGN_IN


def end_session() -> None:
    """Sign this browser out: its row goes, so the cookie opens nothing anywhere.

    A sign-in or registration under way ends on the server too, and its call stops ringing."""
    current = flow()
    with use_case(db()):
        to_hang_up = cancellation.cancel(db(), services(), current.get("auth")) if current else []
        browser_sessions.end(db(), current_session_id())
    forget_session()
    end_calls(services(), to_hang_up)  # after the commit: never a network call inside a transaction


def cancel_flow() -> None:
    """Cancel pressed: the flow's sign-in ends on the server (nothing can approve it now), its call
    is hung up after the commit, and this browser forgets the flow."""
    current = flow()
    end_flow()
    if not current:
        return
    with use_case(db()):
        to_hang_up = cancellation.cancel(db(), services(), current.get("auth"))
    end_calls(services(), to_hang_up)


def forget_session() -> None:
    """This browser's row is gone (signed out here or everywhere): start afresh."""
    session_store.current().end()
    g.pop("csrf_token", None)  # Flask-WTF's per-request copy of the old session's token


def safe_next(url: str | None) -> str | None:
    """Only same-site paths: never an open redirect, never a header injection."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return None
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):  # CR, LF, TAB, DEL, C1 controls
        return None
    parts = urlsplit(url)
    return None if parts.scheme or parts.netloc else url
