"""What the pages show about a person's phone apps: their devices, a set-up under way, a push waiting.

Read-only look-ups for security info, the set-up page and the verify page; the changes themselves
are in mfa/push_enrolment.py and mfa/push_approvals.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Challenge, Method, PushDevice, User
from models.base import is_id
from models.states import ChallengeStatus
from mfa.method_types import ON_DEVICE

# Where a set-up (mfa/push_enrolment.py) has got to.
WAITING, ENROLLED, EXPIRED = "waiting", "enrolled", "expired"


@dataclass(frozen=True)
class PendingPush:
    """The sign-in's request waiting on the phone: the number the page shows, and until when."""

    method_id: str
    number_match: str
    expires_at: datetime


def devices_of(db: Session, user: User) -> list[PushDevice]:
    """The person's phones that approve sign-ins: enrolled, with their method verified, oldest first."""
    return list(db.scalars(
        select(PushDevice).join(Method, Method.id == PushDevice.method_id)
        .where(PushDevice.user_id == user.id, Method.verified_at.is_not(None), PushDevice.public_key.is_not(None))
        .order_by(PushDevice.created_at, PushDevice.id)))


def device_for(db: Session, method: Method) -> PushDevice | None:
    return db.scalar(select(PushDevice).where(PushDevice.method_id == method.id))


def enrolment_state(db: Session, user: User, method_id: object, now: datetime) -> str | None:
    """WAITING for the phone to open its set-up link, ENROLLED, or EXPIRED (the link unused in
    time); None when `method_id` is not a set-up of this person's."""
    device = db.scalar(select(PushDevice).where(PushDevice.method_id == method_id, PushDevice.user_id == user.id)
                       ) if is_id(method_id) else None
    if device is None:
        return None
    if device.public_key is not None:
        return ENROLLED
    return WAITING if now < device.enrolment_expires_at else EXPIRED


def pending_push(db: Session, auth_id: str, now: datetime) -> PendingPush | None:
    """The sign-in's newest push still waiting for an answer (a newer one replaces the older)."""
    challenge = db.scalars(
        select(Challenge).where(Challenge.authentication_id == auth_id, Challenge.type.in_(ON_DEVICE),
                                Challenge.status == ChallengeStatus.PENDING, Challenge.expires_at > now)
        .order_by(Challenge.created_at.desc()).limit(1)).first()
    if challenge is None or challenge.number_match is None:
        return None
    return PendingPush(challenge.method_id, challenge.number_match, challenge.expires_at)
