"""Texted codes: what the provider reports about delivery (the codes themselves: mfa/method_types/text.py)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Challenge
from models.states import AuthStatus, ChallengeStatus, Reason
from mfa import audit, unheard
from mfa.authentications import finish
from mfa.compare_and_set import compare_and_set
from mfa.method_types import Text
from mfa.queries import CHALLENGE_WITH_CONTEXT
from mfa.services import Services

FAILED_DELIVERY = ("undelivered", "failed")


def record_delivery(db: Session, svc: Services, message_sid: str, status: str, error_code: str | None) -> bool:
    """A delivery report. A failure ends the challenge and denies with `delivery_failed`.

    Only a pending challenge changes, so a repeated or late report changes nothing twice.
    Returns False for a failure about a text this server does not know (yet): a report
    can overtake the commit of the request that sent the text.
    """
    if status not in FAILED_DELIVERY:
        unheard.heard_of_text(db, message_sid, status)  # Twilio can reach us: this text is no silent one
        return True
    # Only a text: a CallSid posted here must never fail a call's challenge.
    challenge = db.scalar(select(Challenge).where(Challenge.provider_sid == message_sid, Challenge.type == Text.name)
                          .options(*CHALLENGE_WITH_CONTEXT))
    if challenge is None:
        return False
    if not compare_and_set(db, challenge, where=[Challenge.status == ChallengeStatus.PENDING],
                           status=ChallengeStatus.FAILED, reason=Reason.DELIVERY_FAILED):
        return True
    auth = challenge.authentication
    finish(db, svc, auth, AuthStatus.DENIED, Reason.DELIVERY_FAILED)
    audit.record(db, svc.clock, "challenge_failed", "denied", user=auth.user,
                 method=challenge.method.label, method_type=challenge.method.type, reason=Reason.DELIVERY_FAILED,
                 detail=f"provider status={status} error={error_code or '-'}")
    return True
