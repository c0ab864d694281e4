"""Browser sessions kept on the server, so that ending one ends it on every instance at once.

The cookie carries only a random id (`secrets.token_urlsafe`); the table keeps its SHA-256,
so a copy of the table opens no browser. A session ends after `idle` without use or
`absolute` after it began, whichever is first; completing a sign-in starts a new one.
No Flask here: web/session_store.py is the cookie side.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeGuard

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from models import Authentication, BrowserSession, User
from models.states import AuthStatus
from mfa import audit, remembered_browsers
from mfa.services import Services
from mfa.unit_of_work import rows_changed

TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
TOKEN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")
# last_seen_at is written at most this often per session: idle timeouts are exact to a minute,
# and a page view that changes nothing costs one read, not a write.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Limits:
    idle: timedelta
    absolute: timedelta


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def is_session_id(value: object) -> TypeGuard[str]:
    """Shaped like one of our ids: anything else is not looked up at all."""
    return isinstance(value, str) and 40 <= len(value) <= 64 and set(value) <= TOKEN_CHARACTERS


def has_ended(row: BrowserSession, now: datetime, limits: Limits) -> bool:
    return now - row.last_seen_at >= limits.idle or now - row.created_at >= limits.absolute


def find(db: Session, svc: Services, session_id: object, limits: Limits) -> BrowserSession | None:
    """The live session for this id; an idle or too old one is deleted and not returned."""
    if not is_session_id(session_id):
        return None
    row = db.get(BrowserSession, id_hash(session_id))
    if row is None:
        return None
    if has_ended(row, svc.clock.now(), limits):
        end(db, session_id)
        return None
    return row


def data_of(row: BrowserSession) -> dict[str, Any]:
    return json.loads(row.data) if row.data else {}


def create(db: Session, svc: Services, data: dict[str, Any], *, user_id: str | None = None,
           signed_in_at: datetime | None = None) -> str:
    """A new session; returns its id (the cookie value), which is stored only as a hash."""
    session_id = secrets.token_urlsafe(TOKEN_BYTES)
    now = svc.clock.now()
    db.add(BrowserSession(id_hash=id_hash(session_id), user_id=user_id, data=json.dumps(data),
                          created_at=now, last_seen_at=now, signed_in_at=signed_in_at))
    db.flush()
    return session_id


def touch(db: Session, svc: Services, session_id: str, data: dict[str, Any] | None = None) -> bool:
    """Note that the session was used (and store its data when given).

    False when the session ended meanwhile (signed out elsewhere, rotated): it is never
    written back to life.
    """
    values: dict[str, Any] = {"last_seen_at": svc.clock.now()}
    if data is not None:
        values["data"] = json.dumps(data)
    return rows_changed(db,
        update(BrowserSession).where(BrowserSession.id_hash == id_hash(session_id)).values(**values)
        .execution_options(synchronize_session=False)
    ) == 1


def end(db: Session, session_id: str | None) -> bool:
    if not is_session_id(session_id):
        return False
    return rows_changed(db,
        delete(BrowserSession).where(BrowserSession.id_hash == id_hash(session_id))
        .execution_options(synchronize_session=False)
    ) == 1


def end_all_for_user(db: Session, user_id: str, except_id: str | None = None) -> int:
    """End every browser session of one person (but `except_id`, the session id to keep).

    Approvals not yet turned into a session end too: an approved sign-in waiting in another
    browser must not become a session after a lockout, a fraud report or a reset. Every
    remembered browser is forgotten too, this one included: whatever made the sessions end
    (someone else may have had them) asks for the second step again everywhere.
    """
    remembered_browsers.forget_all(db, user_id)
    db.execute(
        update(Authentication)
        .where(Authentication.user_id == user_id, Authentication.status == AuthStatus.APPROVED,
               Authentication.exchanged_at.is_(None), Authentication.api_key_id.is_(None))
        # Marked spent at the time it was approved: any non-NULL value refuses the exchange.
        .values(exchanged_at=Authentication.completed_at)
        .execution_options(synchronize_session=False)
    )
    query = delete(BrowserSession).where(BrowserSession.user_id == user_id)
    if except_id is not None:
        query = query.where(BrowserSession.id_hash != id_hash(except_id))
    return rows_changed(db, query.execution_options(synchronize_session=False))


def sign_out_everywhere(db: Session, svc: Services, user: User, source_ip: str | None) -> int:
    """The person's own "sign out everywhere": every session ends, this one included."""
    count = end_all_for_user(db, user.id)
    audit.record(db, svc.clock, "signed_out_everywhere", "ok", user=user, source_ip=source_ip,
                 detail=f"{count} session(s) ended")
    return count


def prune(db: Session, svc: Services, limits: Limits) -> int:
    """Delete sessions idle past the limit (indexed on last_seen_at).

    One used past the absolute limit but not idle is refused by `find` and deleted then.
    """
    return rows_changed(db,
        delete(BrowserSession).where(BrowserSession.last_seen_at < svc.clock.now() - limits.idle)
        .execution_options(synchronize_session=False)
    )
