"""Checking a typed code (authenticator app or texted code) against a sign-in."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Authentication, Challenge, Method
from models.states import OPEN_STATUSES, AuthStatus, Reason
from mfa import audit, facts
from mfa.accounts import record_failure, reset_failures
from mfa.authentications import can_continue, end_challenges, finish, get, hold_challenges, set_status
from mfa.errors import AccountLocked, BadRequest, InvalidCode, NotPending, TooManyAttempts
from mfa.locks import lock_person
from mfa.methods import activate, registered_meanwhile
from mfa.method_types import OK, WRONG_CODE, method_type, offered
from mfa.method_types.text import TEXTED, Text
from mfa.services import Services

MAX_CODE_ATTEMPTS = 5
REGISTERED_MEANWHILE = "This person has registered already. Sign in again to use the method they chose."
MAX_CODE_LENGTH = 32


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
    candidates = _candidates(db, svc, auth)
    if not candidates:
        # Most often a texted code that lapsed: say so, and what to do (the API and the pages alike).
        raise NotPending(f"There is no code waiting for this sign-in: a texted code expires after "
                         f"{Text.code_lifetime_minutes()} minutes. Ask for a new code.")
    if auth.can_retry():  # a call or text failed, but an app code may still finish the sign-in
        set_status(db, svc, auth, AuthStatus.REGISTRATION_REQUIRED if auth.registering else AuthStatus.MFA_REQUIRED)
    if not (code.isascii() and code.isdigit()):
        return _refuse(db, svc, auth, "malformed_code", source_ip)
    reason = "wrong_code"
    for candidate in candidates:
        outcome = method_type(candidate.method).check_code(db, svc, candidate.method, candidate.challenge, code)
        if outcome == OK:
            return _approve(db, svc, auth, candidate, source_ip)
        if outcome != WRONG_CODE:
            reason = outcome
    return _refuse(db, svc, auth, reason, source_ip)


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
    end_challenges(db, auth, Reason.VERIFIED)
    if auth.user.failed_count:
        lock_person(db, auth.user_id)
    if not finish(db, svc, auth, AuthStatus.APPROVED, Reason.VERIFIED, challenges_ended=True):
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
    if record_failure(db, svc, auth.user, source_ip):
        finish(db, svc, auth, AuthStatus.LOCKED, Reason.ACCOUNT_LOCKED)
        raise AccountLocked()
    if attempts >= MAX_CODE_ATTEMPTS:
        finish(db, svc, auth, AuthStatus.DENIED, Reason.TOO_MANY_ATTEMPTS)
        raise TooManyAttempts()
    db.refresh(auth)
    raise InvalidCode(attempts_left=MAX_CODE_ATTEMPTS - attempts)
