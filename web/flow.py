"""What a browser session remembers: who is signed in, and the sign-in under way.

Only ids and times go in the (signed) session cookie: never a code or a secret.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import session

from edge import db, services
from models import Authentication, User

RECENT_SIGN_IN = timedelta(minutes=10)


def start_flow(auth: Authentication, purpose: str, mode: str | None = None, method_id: str | None = None) -> None:
    """purpose: "sign_in" (password first) or "change" (security info for a signed-in person)."""
    session["flow"] = {"auth": auth.id, "purpose": purpose, "mode": mode, "method": method_id}


def flow() -> dict | None:
    return session.get("flow")


def set_mode(mode: str, method_id: str | None = None, **extra) -> None:
    current = dict(session.get("flow") or {})
    current.update(mode=mode, method=method_id, **extra)
    session["flow"] = current


def end_flow() -> None:
    session.pop("flow", None)


def complete_sign_in(auth: Authentication, next_url: str | None = None) -> None:
    """A fresh session for the signed-in person (nothing carried over from before)."""
    session.clear()
    session["user_id"] = auth.user_id
    session["signed_in_at"] = services().clock.now().isoformat()
    if next_url:
        session["next"] = next_url


def signed_in_user() -> User | None:
    user_id = session.get("user_id")
    return db().get(User, user_id) if user_id else None


def signed_in_recently() -> bool:
    when = session.get("signed_in_at")
    if not when:
        return False
    return services().clock.now() - datetime.fromisoformat(when) < RECENT_SIGN_IN


def safe_next(url: str | None) -> str | None:
    """Only same-site paths: never an open redirect."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return None
    parts = urlsplit(url)
    return None if parts.scheme or parts.netloc else url
