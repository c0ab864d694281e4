"""Texted codes: sending, and what the provider reports about delivery."""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Challenge
from models.states import AuthStatus, ChallengeStatus, Reason
from mfa import audit
from mfa.authentications import finish
from mfa.calls import WITH_CONTEXT
from mfa.codes import code_hash, new_code
from mfa.services import Services
from mfa.unit_of_work import rows_changed

FAILED_DELIVERY = ("undelivered", "failed")


def new_challenge_code(svc: Services, challenge: Challenge) -> str:
    """A fresh code for a text challenge: its keyed hash is stored, the code itself only texted."""
    code = new_code()
    challenge.code_hash = code_hash(svc.vault, challenge.id, code)
    return code


def record_delivery(db: Session, svc: Services, message_sid: str, status: str, error_code: str | None) -> bool:
    """A delivery report. A failure ends the challenge and denies with `delivery_failed`.

    Only a pending challenge changes, so a repeated or late report changes nothing twice.
    Returns False for a failure about a text this server does not know (yet): a report
    can overtake the commit of the request that sent the text.
    """
    if status not in FAILED_DELIVERY:
        return True
    # Only a text: a CallSid posted here must never fail a call's challenge.
    challenge = db.scalar(select(Challenge).where(Challenge.provider_sid == message_sid, Challenge.type == "sms")
                          .options(*WITH_CONTEXT))
    if challenge is None:
        return False
    failed = rows_changed(db,
        update(Challenge)
        .where(Challenge.id == challenge.id, Challenge.status == ChallengeStatus.PENDING)
        .values(status=ChallengeStatus.FAILED, reason=Reason.DELIVERY_FAILED)
        .execution_options(synchronize_session=False)
    )
    if not failed:
        return True
    auth = challenge.authentication
    finish(db, svc, auth, AuthStatus.DENIED, Reason.DELIVERY_FAILED)
    audit.record(db, svc.clock, "challenge_failed", "denied", user=auth.user,
                 method=challenge.method.label, reason=Reason.DELIVERY_FAILED,
                 detail=f"provider status={status} error={error_code or '-'}")
    return True
