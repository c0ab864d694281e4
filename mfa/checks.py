"""Checking a typed code (authenticator app or texted code) against a sign-in.

A recovery code or a helpdesk's temporary access pass is taken here too, in place of any method
(docs/recovery.md): told apart by its shape (15 or 16 letters and digits, where a method's code
is 6 digits), and accepted even when no code is waiting, also while the person has nothing
registered. A wrong one counts as a wrong code.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Authentication, Challenge, Method
from models.states import OPEN_STATUSES, AuthStatus, Reason
from mfa import access_passes, audit, change_notices, facts, limits, recovery_codes
from mfa.accounts import record_failure, reset_failures
from mfa.authentications import can_continue, end_challenges, finish, get, hold_challenges, set_status
from mfa.entra.requests import ENTRA, usable_methods
from mfa.errors import AccountLocked, BadRequest, InvalidCode, NotPending, TooManyAttempts
from mfa.locks import lock_person
from mfa.methods import activate, registered_meanwhile
from mfa.method_types import OK, WRONG_CODE, method_type, offered
from mfa.method_types.text import TEXTED, Text
from mfa.services import Services

REGISTERED_MEANWHILE = "This person has registered already. Sign in again to use the method they chose."
MAX_CODE_LENGTH = 32
# Only a sign-in takes a recovery code or pass: a change to security info ("change") must prove
# the new method itself.
TAKES_BACKUP = "sign_in"


@dataclass
class Candidate:
    """Something a typed code may be for: a method checked alone (an app), or a texted code's challenge."""

    method: Method
    challenge: Challenge | None = None


def check_code(db: Session, svc: Services, auth_id: object, code: object, source_ip: str | None) -> Authentication:
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_LENGTH:
        raise BadRequest("'code' is required and must be a short string.", field="code")
    code = "".join(code.split())
    auth = get(db, svc, auth_id)
    _require_checkable(auth, svc)
    backup = _backup_kind(code) if auth.purpose == TAKES_BACKUP else None
    if backup is not None:
        return _check_backup(db, svc, auth, backup, recovery_codes.normalise(code), source_ip)
    candidates = _candidates(db, svc, auth)
    malformed = not (code.isascii() and code.isdigit())
    if not candidates and not malformed:
        # Most often a texted code that lapsed: say so, and what to do (the API and the pages alike).
        raise NotPending(f"There is no code waiting for this sign-in: a texted code expires after "
                         f"{Text.code_lifetime_minutes()} minutes. Ask for a new code.")
    if auth.can_retry():  # a call or text failed, but an app code may still finish the sign-in
        set_status(db, svc, auth, AuthStatus.REGISTRATION_REQUIRED if auth.registering else AuthStatus.MFA_REQUIRED)
    if malformed:  # letters: not a method's code, and (no code waiting or not) a mistyped recovery code or pass
        return _refuse(db, svc, auth, "malformed_code", source_ip)
    reason = "wrong_code"
    for candidate in candidates:
        outcome = method_type(candidate.method).check_code(db, svc, candidate.method, candidate.challenge, code)
        if outcome == OK:
            return _approve(db, svc, auth, candidate, source_ip)
        if outcome != WRONG_CODE:
            reason = outcome
    return _refuse(db, svc, auth, reason, source_ip)


def _backup_kind(code: str) -> Reason | None:
    """A recovery code or an access pass, by its shape; None for anything else (a method's code)."""
    normalised = recovery_codes.normalise(code)
    if recovery_codes.is_shaped(normalised):
        return Reason.RECOVERY_CODE
    if recovery_codes.is_shaped(normalised, access_passes.LENGTH):
        return Reason.ACCESS_PASS
    return None


def _check_backup(db: Session, svc: Services, auth: Authentication, kind: Reason, normalised: str,
                  source_ip: str | None) -> Authentication:
    """Spend a recovery code or one use of a pass and approve the sign-in; a wrong, used, expired or
    revoked one is a wrong code. Locks in the usual order (mfa/locks.py): the sign-in's challenges,
    the person, then the code or pass row (its UPDATE), then the sign-in."""
    if auth.can_retry():  # a call or text failed: the sign-in may still be finished this way
        set_status(db, svc, auth, AuthStatus.REGISTRATION_REQUIRED if auth.registering else AuthStatus.MFA_REQUIRED)
    hold_challenges(db, auth)
    lock_person(db, auth.user_id)
    if kind == Reason.RECOVERY_CODE:
        code_id = recovery_codes.spend(db, svc, auth.user_id, normalised)
        spent = (code_id, 0) if code_id is not None else None
    else:
        spent = access_passes.spend(db, svc, auth.user_id, normalised)
    if spent is None:
        return _refuse(db, svc, auth, f"wrong_{kind}", source_ip)
    end_challenges(db, svc, auth, kind)
    if not finish(db, svc, auth, AuthStatus.APPROVED, kind, challenges_ended=True):
        # Ended meanwhile (a `#`, a timeout): nothing was approved, so the code or use is given back.
        (recovery_codes.unspend if kind == Reason.RECOVERY_CODE else access_passes.unspend)(db, spent[0])
        raise NotPending(f"This sign-in has already ended ({auth.status}).")
    reset_failures(db, auth.user)
    audit.record(db, svc.clock, "sign_in", "approved", user=auth.user, reason=kind, source_ip=source_ip,
                 method_type=facts.TYPED_CODE,
                 detail="nothing registered: approved without registering" if auth.registering else None)
    if kind == Reason.RECOVERY_CODE:
        left = recovery_codes.remaining(db, auth.user_id)
        audit.record(db, svc.clock, "recovery_code_used", "ok", user=auth.user, source_ip=source_ip,
                     detail=f"{left} left")
        change_notices.notify(db, svc, auth.user, change_notices.RECOVERY_CODE_USED,
                              detail=f"{left} recovery code(s) left")
    else:
        audit.record(db, svc.clock, "access_pass_used", "ok", user=auth.user, source_ip=source_ip,
                     detail=f"{spent[1]} use(s) left")
        change_notices.notify(db, svc, auth.user, change_notices.ACCESS_PASS_USED)
    return auth


def _require_checkable(auth: Authentication, svc: Services) -> None:
    if auth.status == AuthStatus.DENIED and auth.reason == Reason.TOO_MANY_ATTEMPTS:
        raise TooManyAttempts()
    if auth.status == AuthStatus.LOCKED or auth.user.is_locked(svc.clock.now()):
        raise AccountLocked()
    if not can_continue(auth, svc.clock.now()):
        raise NotPending(f"This sign-in has already ended ({auth.status}).")


def _candidates(db: Session, svc: Services, auth: Authentication) -> list[Candidate]:
    now = svc.clock.now()
    registering = auth.registering
    # Texted codes exist only while a challenge is under way (the sign-in is pending).
    challenges = db.scalars(
        select(Challenge).where(
            Challenge.authentication_id == auth.id,
            Challenge.status.in_(TEXTED),
            Challenge.code_hash.is_not(None),
        )
    ).all() if auth.status == AuthStatus.PENDING else []
    found = [Candidate(c.method, c) for c in challenges if now < c.expires_at]
    for method in auth.user.methods:
        if not offered(method) or not method_type(method).takes_code_without_challenge:
            continue
        # While registering, only the app being enrolled; afterwards, only enrolled apps.
        if registering != method.is_verified:
            found.append(Candidate(method))
    if auth.purpose == ENTRA:  # only what Entra accepts: another method's code is no code here
        allowed = {m.id for m in usable_methods(db, svc, auth) or ()}
        found = [c for c in found if c.method.id in allowed]
    return found


def _approve(db: Session, svc: Services, auth: Authentication, candidate: Candidate,
             source_ip: str | None) -> Authentication:
    if registered_meanwhile(db, auth):
        if finish(db, svc, auth, AuthStatus.DENIED, Reason.REGISTERED_MEANWHILE):
            audit.record(db, svc.clock, "sign_in", "denied", user=auth.user, reason=Reason.REGISTERED_MEANWHILE,
                         source_ip=source_ip, detail="a first registration finished after the person registered",
                         method_type=candidate.method.type)
        raise NotPending(REGISTERED_MEANWHILE)
    # The order a call's `#` takes them in (calls._approve): the sign-in's challenges, the person
    # (reset_failures writes them), then the sign-in. Another order could deadlock with that `#`.
    end_challenges(db, svc, auth, Reason.VERIFIED)
    if auth.user.failed_count:
        lock_person(db, auth.user_id)
    if not finish(db, svc, auth, AuthStatus.APPROVED, Reason.VERIFIED, challenges_ended=True,
                  approved_with=candidate.method.type):
        raise NotPending(f"This sign-in has already ended ({auth.status}).")
    method = candidate.method
    if not method.is_verified:
        activate(db, svc, method, source_ip)
    reset_failures(db, auth.user)
    audit.record(db, svc.clock, "sign_in", "approved", user=auth.user, method=method.label,
                 method_type=method.type, reason=Reason.VERIFIED, source_ip=source_ip)
    return auth


def _refuse(db: Session, svc: Services, auth: Authentication, reason: str, source_ip: str | None) -> Authentication:
    # The person before the sign-in, the order a send takes them in (mfa/locks.py): counting a
    # failure writes both, and the opposite order could deadlock with a send. The last wrong code
    # allowed also ends the sign-in's call: its challenge comes first, as for a `#` (calls._approve).
    hold_challenges(db, auth)
    lock_person(db, auth.user_id)
    attempts = db.execute(
        update(Authentication)
        .where(Authentication.id == auth.id, Authentication.status.in_(OPEN_STATUSES))
        .values(attempts=Authentication.attempts + 1)
        .returning(Authentication.attempts)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if attempts is None:  # another request finished this sign-in meanwhile
        db.refresh(auth)
        raise NotPending(f"This sign-in has already ended ({auth.status}).")
    audit.record(db, svc.clock, "code_check", "failed", user=auth.user, reason=reason,
                 source_ip=source_ip, method_type=facts.TYPED_CODE)
    if record_failure(db, svc, auth.user, source_ip, via_api=auth.api_key_id is not None):
        finish(db, svc, auth, AuthStatus.LOCKED, Reason.ACCOUNT_LOCKED)
        raise AccountLocked()
    allowed = svc.limits.number(limits.CODE_ATTEMPTS)
    if attempts >= allowed:
        finish(db, svc, auth, AuthStatus.DENIED, Reason.TOO_MANY_ATTEMPTS)
        raise TooManyAttempts()
    db.refresh(auth)
    raise InvalidCode(attempts_left=allowed - attempts)
