"""Temporary access passes: what the helpdesk gives a person who has lost their phone.

`flask --app app users issue-pass USERNAME [--minutes 60] [--uses 1]` makes one. A pass is a
second factor for a short time (10 minutes to 8 hours) and a few uses (1 to 10): typed where a
code goes (`POST …/checks`, or the sign-in page's "Use a recovery code or a pass"), also while
the person has nothing registered, so they can sign in once and register a new phone.

Shape: 16 characters of Crockford's base32 (80 bits) in four groups of four
(`K7QM-2XWB-9P03-HRTA`): sixteen characters where a recovery code has fifteen, so a check
tells the two apart before looking anything up. Stored as a SHA-256 only (see
mfa/recovery_codes.py for why that is enough), shown once.

A person has at most one pass that works: issuing a new one revokes their older ones, so a
pass read out to the wrong caller can be undone by issuing another (or by `users reset-methods`
and a new pass).
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.recovery import AccessPass
from mfa import audit
from mfa.accounts import get_user
from mfa.errors import BadRequest
from mfa.locks import lock_person
from mfa.recovery_codes import normalise, random_groups
from mfa.services import Services
from mfa.unit_of_work import rows_changed
from mfa.vault import token_hash

LENGTH = 16  # 80 bits
GROUP = 4
MIN_MINUTES, MAX_MINUTES, DEFAULT_MINUTES = 10, 480, 60
MIN_USES, MAX_USES, DEFAULT_USES = 1, 10, 1


def issue(db: Session, svc: Services, username: str, minutes: int = DEFAULT_MINUTES,
          uses: int = DEFAULT_USES) -> str:
    """A new pass for the person; their older passes stop working. The pass, once."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise BadRequest(f"A pass lasts from {MIN_MINUTES} to {MAX_MINUTES} minutes (8 hours).", field="minutes")
    if isinstance(uses, bool) or not isinstance(uses, int) or not MIN_USES <= uses <= MAX_USES:
        raise BadRequest(f"A pass can be used from {MIN_USES} to {MAX_USES} times.", field="uses")
    user = get_user(db, username)
    lock_person(db, user.id)
    now = svc.clock.now()
    revoked = rows_changed(db,
        update(AccessPass)
        .where(AccessPass.user_id == user.id, AccessPass.revoked_at.is_(None), AccessPass.expires_at > now,
               AccessPass.uses < AccessPass.uses_allowed)
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    secret = random_groups(LENGTH, GROUP)
    expires = now + timedelta(minutes=minutes)
    db.add(AccessPass(user_id=user.id, secret_hash=token_hash(normalise(secret)), created_at=now,
                      expires_at=expires, uses_allowed=uses, uses=0))
    db.flush()
    audit.record(db, svc.clock, "access_pass_issued", "ok", user=user,
                 detail=f"{minutes} minutes, {uses} use(s), until {expires:%Y-%m-%d %H:%M} UTC; "
                        f"{revoked} older pass(es) revoked")
    return secret


def working(db: Session, svc: Services, user_id: str) -> AccessPass | None:
    """The person's pass that would still work now, if any (for `users show`)."""
    return db.scalar(select(AccessPass).where(
        AccessPass.user_id == user_id, AccessPass.revoked_at.is_(None), AccessPass.expires_at > svc.clock.now(),
        AccessPass.uses < AccessPass.uses_allowed))


def spend(db: Session, svc: Services, user_id: str, normalised: str) -> tuple[str, int] | None:
    """Count one use of the person's matching pass, if it is still valid: (its id, uses left), else None.

    An expired, revoked or used-up pass matches nothing. One UPDATE that states
    `uses < uses_allowed`, so twenty requests at once never use it more often than allowed.
    """
    now = svc.clock.now()
    row = db.execute(
        update(AccessPass)
        .where(AccessPass.user_id == user_id, AccessPass.secret_hash == token_hash(normalised),
               AccessPass.revoked_at.is_(None), AccessPass.expires_at > now,
               AccessPass.uses < AccessPass.uses_allowed)
        .values(uses=AccessPass.uses + 1, last_used_at=now)
        .returning(AccessPass.id, AccessPass.uses_allowed - AccessPass.uses)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    return (row[0], row[1]) if row is not None else None


def unspend(db: Session, pass_id: str) -> None:
    """Give back a use counted in this transaction when the sign-in it was for had ended meanwhile."""
    db.execute(update(AccessPass).where(AccessPass.id == pass_id).values(uses=AccessPass.uses - 1)
               .execution_options(synchronize_session=False))
