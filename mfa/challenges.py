"""Starting a challenge (text or call) for a sign-in, with the spacing rules that protect phones."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import Authentication, Challenge, DoNotCall, Method, SendRecord
from models.base import new_id
from mfa import audit, sms
from mfa.authentications import can_continue, get, set_status
from mfa.errors import AccountLocked, NotPending, RateLimited, Unprocessable
from mfa.methods import owned_verified_method
from mfa.services import Services

log = logging.getLogger("mfa.challenges")

CHALLENGE_TTL = {"sms": timedelta(minutes=5), "voice": timedelta(minutes=2)}
RESEND_AFTER = timedelta(seconds=30)
MAX_SENDS = 5
# Across sign-ins, in any rolling hour: stops floods, harassment and SMS pumping.
CAP_WINDOW = timedelta(hours=1)
MAX_SENDS_PER_USER_HOUR = 15
MAX_SENDS_PER_NUMBER_HOUR = 10


def start_challenge(db: Session, svc: Services, auth_id, method_id, source_ip) -> Challenge:
    auth = get(db, svc, auth_id)
    if auth.registering or not can_continue(auth, svc.clock.now()):
        raise NotPending(f"This sign-in is not waiting for a second factor ({auth.status}).")
    method = owned_verified_method(auth.user, method_id)
    if method.type == "totp":
        raise Unprocessable(
            "Authenticator-app codes need no challenge: send the code to /checks.",
            code="no_challenge_needed",
        )
    return issue(db, svc, auth, method, "sign_in", source_ip)


def issue(db: Session, svc: Services, auth: Authentication, method: Method, purpose: str, source_ip) -> Challenge:
    """Send a code or place a call for `method`; replaces any pending challenge.

    Nothing is stored unless the provider accepted the request, so a failed
    send leaves no half-made challenge behind.
    """
    if method.type not in CHALLENGE_TTL:
        raise Unprocessable(f"Verification by {method.type} is not available on this server.",
                            code="method_not_available")
    if auth.user.is_locked(svc.clock.now()):
        raise AccountLocked()
    _lock(db, auth)
    _check_spacing(db, svc, auth)
    _check_caps(db, svc, auth, method)
    now = svc.clock.now()
    challenge = Challenge(
        id=new_id(), authentication_id=auth.id, method=method, type=method.type, purpose=purpose,
        status="pending", attempts=0, sends=1, created_at=now, last_sent_at=now,
        expires_at=min(now + CHALLENGE_TTL[method.type], auth.expires_at),
    )
    number = svc.vault.decrypt(method.phone_encrypted)
    if method.type == "voice" and is_do_not_call(db, svc, number):
        raise Unprocessable(
            "Whoever answers this number asked us not to call it again. Choose another method, "
            "or prove the number is yours with a text message.", code="do_not_call")
    if method.type == "sms":
        sms.send_code(svc, challenge, number, auth.user.language)
    else:
        challenge.provider_sid = svc.telephony.place_verification_call(number, challenge.id)
    for call_sid in _supersede(db, auth):
        _end_call_quietly(svc, call_sid)
    db.add(challenge)
    _count_send(db, svc, auth)
    db.add(SendRecord(at=now, user_id=auth.user_id, phone_lookup=method.phone_lookup, type=method.type))
    set_status(db, svc, auth, "pending")
    audit.record(db, svc.clock, "challenge_started", "pending", user=auth.user, method=method.label,
                 source_ip=source_ip, detail=f"type={method.type} purpose={purpose}")
    return challenge


def is_do_not_call(db: Session, svc: Services, number: str) -> bool:
    return db.scalar(select(DoNotCall.id).where(DoNotCall.phone_lookup.in_(svc.vault.keyed_hashes(number)))) is not None


def _lock(db: Session, auth: Authentication) -> None:
    """Serialise challenge starts for one sign-in (row lock on PostgreSQL)."""
    db.execute(select(Authentication.id).where(Authentication.id == auth.id).with_for_update())


def _check_spacing(db: Session, svc: Services, auth: Authentication) -> None:
    db.refresh(auth)  # read the counters after taking the lock
    now = svc.clock.now()
    if auth.sends >= MAX_SENDS:
        raise RateLimited(
            (auth.expires_at - now).total_seconds(),
            f"No more than {MAX_SENDS} codes or calls per sign-in. Start signing in again.",
        )
    if auth.last_sent_at and now - auth.last_sent_at < RESEND_AFTER:
        wait = (auth.last_sent_at + RESEND_AFTER - now).total_seconds()
        raise RateLimited(wait, f"Wait {int(wait)} seconds before asking for another code or call.")


def _check_caps(db: Session, svc: Services, auth: Authentication, method: Method) -> None:
    """Caps across sign-ins: per person, and per number (protects people who are not users)."""
    since = svc.clock.now() - CAP_WINDOW
    per_user = db.scalar(select(func.count()).select_from(SendRecord).where(
        SendRecord.user_id == auth.user_id, SendRecord.at >= since))
    number = svc.vault.decrypt(method.phone_encrypted)
    per_number = db.scalar(select(func.count()).select_from(SendRecord).where(
        SendRecord.phone_lookup.in_(svc.vault.keyed_hashes(number)), SendRecord.at >= since))
    if per_user >= MAX_SENDS_PER_USER_HOUR or per_number >= MAX_SENDS_PER_NUMBER_HOUR:
        audit.record(db, svc.clock, "challenge_refused", "rate_limited", user=auth.user, method=method.label,
                     reason="hourly_cap", detail=f"user={per_user} number={per_number} in the last hour")
        raise RateLimited(CAP_WINDOW.total_seconds(),
                          "Too many texts and calls in the last hour. Try again later or use the authenticator app.")


def _count_send(db: Session, svc: Services, auth: Authentication) -> None:
    db.execute(
        update(Authentication)
        .where(Authentication.id == auth.id)
        .values(sends=Authentication.sends + 1, last_sent_at=svc.clock.now())
        .execution_options(synchronize_session=False)
    )


def _supersede(db: Session, auth: Authentication) -> list[str]:
    """Mark pending challenges replaced; returns the calls that must now be ended."""
    pending = db.scalars(
        select(Challenge).where(Challenge.authentication_id == auth.id, Challenge.status == "pending")
    ).all()
    db.execute(
        update(Challenge)
        .where(Challenge.authentication_id == auth.id, Challenge.status == "pending")
        .values(status="replaced", reason="replaced")
        .execution_options(synchronize_session=False)
    )
    return [c.provider_sid for c in pending if c.type == "voice" and c.provider_sid]


def _end_call_quietly(svc: Services, call_sid: str) -> None:
    try:
        svc.telephony.end_call(call_sid)
    except Exception:  # the call's own webhooks will say goodbye; never fail the new challenge
        log.warning("could not end superseded call %s", call_sid, exc_info=True)
