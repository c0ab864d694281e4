"""Reading one person's audit trail (`flask --app app audit show`, docs/audit.md).

Events are linked to a person by their user id, so a renamed person keeps their trail. A name
that matches no one is kept only as a keyed hash (mfa/audit.py): asked about such a name, the
answer is "no such user", with how many sign-in attempts named it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditEvent
from mfa.accounts import find_user
from mfa.audit import unknown_username
from mfa.errors import NotFound
from mfa.services import Services

DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Trail:
    events: list[AuditEvent]  # oldest first: the latest `limit` events from `since`
    left_out: int  # earlier events in the range that were not shown


def parse_since(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time (UTC when it names no offset); ValueError otherwise."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since must be a date (YYYY-MM-DD) or an ISO 8601 time such as "
                         f"2026-12-01T09:00Z, not {text!r}.") from None
    if len(text.strip()) == len("YYYY-MM-DD"):
        when = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
    try:
        return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC time there is
        raise ValueError(f"--since must be a time between the years 1 and 9999 in UTC, not {text!r}.") from None


def of_person(db: Session, svc: Services, username: str, since: datetime | None = None,
              limit: int = DEFAULT_LIMIT) -> Trail:
    user = find_user(db, username)
    if user is None:
        raise NotFound(_no_such_user(db, svc, username), code="unknown_user")
    where = [AuditEvent.user_id == user.id, *([AuditEvent.at >= since] if since else [])]
    total = db.scalar(select(func.count()).select_from(AuditEvent).where(*where)) or 0
    latest = db.scalars(select(AuditEvent).where(*where).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                        .limit(limit)).all()
    return Trail(list(reversed(latest)), total - len(latest))


def _no_such_user(db: Session, svc: Services, username: str) -> str:
    tries = db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.user_id.is_(None), AuditEvent.username == unknown_username(svc.vault, username))) or 0
    if not tries:
        return f"no such user: {username}"
    return f"no such user: {username} ({tries} event(s) name it, kept as {unknown_username(svc.vault, username)})"
