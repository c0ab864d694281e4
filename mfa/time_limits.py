"""More time for a sign-in or a change under way (WCAG 2.2.1, Timing Adjustable).

A sign-in lasts AUTHENTICATION_TTL (10 minutes). The page warns before it ends and offers more
time; each extension gives a full AUTHENTICATION_TTL from now, up to LONGEST after the sign-in
began (at least ten extensions, as 2.2.1 asks), so a stolen page cannot hold a sign-in open for ever.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from mfa import audit
from mfa.authentications import AUTHENTICATION_TTL, can_continue
from mfa.approvals import ENTRA
from mfa.compare_and_set import compare_and_set
from mfa.entra.profile import SIGN_IN_TTL
from mfa.errors import whole_seconds
from mfa.services import Services
from models import Authentication

LONGEST = timedelta(hours=2)
WARN_BEFORE = timedelta(minutes=2)  # more than the 20 seconds 2.2.1 asks for, for a slow screen reader


@dataclass(frozen=True)
class TimeLeft:
    seconds: int  # until the sign-in ends, rounded up
    can_extend: bool  # an extension would add time (not yet at LONGEST)


def time_left(auth: Authentication, now: datetime) -> TimeLeft | None:
    """None for a sign-in that has ended: it has no time to count down or extend."""
    if not can_continue(auth, now):
        return None
    return TimeLeft(whole_seconds((auth.expires_at - now).total_seconds()), _extended_end(auth, now) > auth.expires_at)


def extend(db: Session, svc: Services, auth: Authentication) -> bool:
    """Give the sign-in AUTHENTICATION_TTL from now (never past LONGEST); False if it has ended or cannot grow."""
    now = svc.clock.now()
    seen, end = auth.expires_at, _extended_end(auth, now)
    if not can_continue(auth, now) or end <= seen:
        return False
    if not compare_and_set(db, auth, where=[Authentication.expires_at == seen], expires_at=end):
        return False
    audit.record(db, svc.clock, "time_extended", auth.purpose, user=auth.user, detail=f"until {end.isoformat()}")
    return True


def lifetime(auth: Authentication) -> timedelta:
    """How long the sign-in lasts from its start, as the page says it."""
    return SIGN_IN_TTL if auth.purpose == ENTRA else AUTHENTICATION_TTL


def _extended_end(auth: Authentication, now: datetime) -> datetime:
    if auth.purpose == ENTRA:  # Microsoft waits only so long for its answer: more time here would not help
        return auth.expires_at
    return min(now + AUTHENTICATION_TTL, auth.created_at + LONGEST)
