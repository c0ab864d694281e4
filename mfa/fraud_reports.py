""""This wasn't me": 0# on a call, or the report on the phone app. The person is blocked until an
operator unlocks them, every other sign-in of theirs ends, and no browser stays signed in."""
from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Authentication, Challenge, Method, User
from models.states import OPEN_STATUSES, AuthStatus, ChallengeStatus, Reason
from mfa import audit, browser_sessions
from mfa.authentications import finish
from mfa.locks import is_sqlite, lock_person
from mfa.method_types import types_where
from mfa.services import Services

log = logging.getLogger("mfa.calls")  # the logger operators already watch for these lines


def hold_challenges_under_way(db: Session, user_id: str) -> None:
    """Lock the challenges under way on all the person's sign-ins (the reported one's too), lowest id
    first, before the person: a report ends them all, and another sign-in's `#` holds its own call
    while it waits for the person (mfa/locks.py). The fixed order keeps two reports apart too."""
    if is_sqlite(db):  # SQLite: its one writer never waits on rows
        return
    db.execute(select(Challenge.id).where(
        Challenge.status == ChallengeStatus.PENDING,
        Challenge.authentication_id.in_(select(Authentication.id).where(Authentication.user_id == user_id)),
    ).order_by(Challenge.id).with_for_update())


def block(db: Session, svc: Services, auth: Authentication, method: Method, how: str) -> list[str]:
    """After the reported challenge was claimed: block the person and end everything under way.

    Returns the calls of their other sign-ins, for the caller to hang up after its commit."""
    lock_person(db, auth.user_id)  # the person is blocked below: lock them before any sign-in
    finish(db, svc, auth, AuthStatus.FRAUD_REPORTED, Reason.FRAUD_REPORTED)
    db.execute(update(User).where(User.id == auth.user_id, User.fraud_blocked_at.is_(None))
               .values(fraud_blocked_at=svc.clock.now()).execution_options(synchronize_session=False))
    to_end = _end_other_sign_ins(db, svc, auth)
    browser_sessions.end_all_for_user(db, auth.user_id)  # "not me": no browser stays signed in
    audit.record(db, svc.clock, "fraud_reported", "blocked", user=auth.user, method=method.label,
                 method_type=method.type, reason=Reason.FRAUD_REPORTED, source_ip=auth.source_ip,
                 detail=f"{how}; account blocked until `users unlock`")
    log.warning("FRAUD REPORTED by %s on %s: account blocked until unlocked (sign-in from %s)",
                auth.user.username, method.label, auth.source_ip)
    return to_end


def _end_other_sign_ins(db: Session, svc: Services, reported: Authentication) -> list[str]:
    others = db.scalars(select(Authentication).where(
        Authentication.user_id == reported.user_id, Authentication.id != reported.id,
        Authentication.status.in_(OPEN_STATUSES))).all()
    calls: list[str] = []
    for other in others:
        calls += [c.provider_sid for c in db.scalars(select(Challenge).where(
            Challenge.authentication_id == other.id, Challenge.status == ChallengeStatus.PENDING,
            Challenge.type.in_(types_where(ends_by_hanging_up=True)))) if c.provider_sid]
        finish(db, svc, other, AuthStatus.LOCKED, Reason.FRAUD_REPORTED)
    return calls
