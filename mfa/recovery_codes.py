"""Recovery codes: ten single-use codes a person saves, for when their phone is lost.

Each code is 15 characters of Crockford's base32 (no I, L, O or U: nothing to mistake for
1 or 0), 75 bits from `secrets`, shown in three groups of five (`7KQ2M-XW9PB-03HRT`) once,
when made. Only a SHA-256 of the code is kept (vault.token_hash, as for API keys and app
passwords): at 75 bits a fast unkeyed hash cannot be reversed by guessing, and unlike a keyed
hash it needs nothing from DATA_KEY, so `data rotate-key` has nothing to re-hash (the code
itself is never stored, so a keyed hash could not be re-hashed anyway).

Typing is forgiving: case, spaces and hyphens do not matter, and I, L and O count as 1, 1
and 0. A code that a sign-in accepts is spent by one UPDATE … WHERE used_at IS NULL, so of
twenty requests presenting it at once exactly one wins.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from models import AuditEvent, Authentication, User
from models.recovery import RecoveryCode
from models.states import AuthStatus, Reason
from mfa import audit, change_notices
from mfa.authentications import get
from mfa.errors import Conflict
from mfa.locks import lock_person
from mfa.services import Services
from mfa.vault import token_hash

COUNT = 10
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: 5 bits a character
LENGTH = 15  # 75 bits
GROUP = 5
CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})
SEPARATORS = str.maketrans("", "", " -\t")
# A relying application may ask for a new set only just after the person signed in with MFA.
AFTER_SIGN_IN = timedelta(minutes=10)


def normalise(typed: str) -> str:
    """What was typed, as generated: upper case, no spaces or hyphens, confusable letters mapped."""
    return typed.upper().translate(SEPARATORS).translate(CONFUSABLE)


def is_shaped(normalised: str, length: int = LENGTH) -> bool:
    return len(normalised) == length and all(c in ALPHABET for c in normalised)


def random_groups(length: int, group: int) -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(length))
    return "-".join(chars[i:i + group] for i in range(0, length, group))


def generate(db: Session, svc: Services, user: User) -> list[str]:
    """A new set of ten codes for `user`; the old set (used or not) stops working. Shown once."""
    lock_person(db, user.id)  # two regenerations at once: one set survives, not twenty codes
    voided = remaining(db, user.id)
    replacing = has_codes(db, user.id)
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id)
               .execution_options(synchronize_session=False))
    now = svc.clock.now()
    codes = [random_groups(LENGTH, GROUP) for _ in range(COUNT)]
    db.add_all(RecoveryCode(user_id=user.id, code_hash=token_hash(normalise(code)), created_at=now)
               for code in codes)
    db.flush()
    audit.record(db, svc.clock, "recovery_codes_generated", "ok", user=user,
                 detail=f"{COUNT} new codes; {voided} unused old code(s) voided")
    if replacing:  # a person's first set (the end of registration) changes nothing they had
        change_notices.notify(db, svc, user, change_notices.RECOVERY_CODES_REGENERATED,
                              detail=f"{voided} unused old code(s) voided")
    return codes


# Codes stand in for the person's phone or app, so only a sign-in that proved one may make them:
# never a password alone (mfa_not_required), a remembered browser, or a recovery code or pass (one
# spent code must not buy a new set and void the person's own). docs/recovery.md.
PROVES_A_METHOD = (Reason.VERIFIED,)
SECOND_FACTOR_NEEDED = ("New recovery codes need a sign-in with your phone or app. A sign-in with only a "
                        "password, on a remembered browser, or with a recovery code or a helpdesk pass is not "
                        "enough: sign in again and verify with your phone or app, then ask for new codes.")
ACCOUNT_BLOCKED = ("No new recovery codes while this account is blocked after a sign-in was reported as not "
                   "the person's. Only an administrator can unblock it.")
# After a recovery code or a pass is used, no new set for a day: someone who signed in with one code
# could otherwise add their own app, sign in with it and void the person's other codes at once. The
# person keeps their unused codes meanwhile, and was texted when the code or pass was used.
BACKUP_COOL_OFF = timedelta(hours=24)
BACKUP_USES = ("recovery_code_used", "access_pass_used")
BACKUP_USED_RECENTLY = ("A recovery code or a helpdesk pass was used to sign in to this account in the last 24 hours, "
                        "so new recovery codes cannot be made until {when} (UTC). Your other unused codes still work.")
ACCOUNT_LOCKED = ("No new recovery codes while this account is locked after too many wrong passwords or codes. "
                  "Try again when the lock ends.")


def renew(db: Session, svc: Services, user: User, approved_by: str | None) -> list[str]:
    """A new set (generate) for `user`, whose sign-in was approved for the reason `approved_by`:
    the one rule for the API, security info and the end of registration. 409 `second_factor_needed`
    unless that reason proved a method; 409 `account_blocked` / `account_locked` while the person is
    fraud-blocked or locked (read after taking the person's lock, so a block made meanwhile counts)."""
    refusal: Conflict | None = None
    if approved_by not in PROVES_A_METHOD:
        refusal = Conflict(SECOND_FACTOR_NEEDED, code="second_factor_needed")
    else:
        lock_person(db, user.id)
        db.refresh(user, ["locked_until", "fraud_blocked_at"])
        if user.fraud_blocked_at is not None:
            refusal = Conflict(ACCOUNT_BLOCKED, code="account_blocked")
        elif user.is_locked(svc.clock.now()):
            refusal = Conflict(ACCOUNT_LOCKED, code="account_locked")
        elif (used := _backup_used_since(db, user, svc.clock.now() - BACKUP_COOL_OFF)) is not None:
            when = (used + BACKUP_COOL_OFF).strftime("%d %B %Y %H:%M")
            refusal = Conflict(BACKUP_USED_RECENTLY.format(when=when), code="backup_used_recently")
    if refusal is not None:
        audit.record(db, svc.clock, "recovery_codes_generated", "refused", user=user, reason=refusal.code,
                     detail=f"sign-in approved by {approved_by or 'unknown'}")
        raise refusal
    return generate(db, svc, user)


def _backup_used_since(db: Session, user: User, since: datetime) -> datetime | None:
    """When a recovery code or pass last signed this person in, if after `since`."""
    return db.scalar(select(func.max(AuditEvent.at)).where(
        AuditEvent.user_id == user.id, AuditEvent.event.in_(BACKUP_USES), AuditEvent.outcome == "ok",
        AuditEvent.at > since))


def generate_at_registration(db: Session, svc: Services, auth: Authentication) -> list[str]:
    """The first set, at the end of a registration that was approved by the method it registered."""
    if not auth.registering or auth.status != AuthStatus.APPROVED:
        raise Conflict("Recovery codes are given at the end of a completed registration.", code="not_approved")
    return renew(db, svc, auth.user, auth.reason)


def generate_after_sign_in(db: Session, svc: Services, auth_id: object) -> list[str]:
    """POST /api/v1/authentications/{id}/recovery-codes: a new set for the person of a sign-in
    approved with their phone or app less than 10 minutes ago (by when it was approved); 409
    `not_approved`, `too_old`, `second_factor_needed`, `account_blocked` or `account_locked`."""
    auth = get(db, svc, auth_id)
    if auth.status != AuthStatus.APPROVED or auth.completed_at is None:
        raise Conflict(f"Recovery codes are given only after an approved sign-in; this one is {auth.status}.",
                       code="not_approved")
    if svc.clock.now() - auth.completed_at >= AFTER_SIGN_IN:
        raise Conflict(f"Recovery codes are given only within {AFTER_SIGN_IN.seconds // 60} minutes of an "
                       "approved sign-in. Sign in again.", code="too_old")
    return renew(db, svc, auth.user, auth.reason)


def remaining(db: Session, user_id: str) -> int:
    """How many of the person's codes are still unused."""
    return db.scalar(select(func.count()).select_from(RecoveryCode)
                     .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))) or 0


def has_codes(db: Session, user_id: str) -> bool:
    """Whether the person has ever been given a set (used or not) that is still on file."""
    return db.scalar(select(func.count()).select_from(RecoveryCode).where(RecoveryCode.user_id == user_id)) != 0


def spend(db: Session, svc: Services, user_id: str, normalised: str) -> str | None:
    """Mark the person's matching unused code used; its id if this call spent it, else None.

    One UPDATE that also states the code is unused: PostgreSQL makes a second one wait for the
    first to commit and then finds nothing to change.
    """
    return db.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == token_hash(normalised),
               RecoveryCode.used_at.is_(None))
        .values(used_at=svc.clock.now())
        .returning(RecoveryCode.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def unspend(db: Session, code_id: str) -> None:
    """Give back a code spent in this transaction when the sign-in it was for had ended meanwhile."""
    db.execute(update(RecoveryCode).where(RecoveryCode.id == code_id).values(used_at=None)
               .execution_options(synchronize_session=False))
