"""What a signed request from a phone app asks for: each use case first finds the device that
signed it (mfa/device_signatures.py), then acts. Nothing changes for a request that fails that."""
from __future__ import annotations

from sqlalchemy.orm import Session

from models.states import AuthStatus
from mfa import push_approvals, push_enrolment
from mfa.device_signatures import SignedRequest, signed_by_device
from mfa.errors import BadRequest
from mfa.push_approvals import PendingRequest
from mfa.services import Services


def pending(db: Session, svc: Services, signed: SignedRequest) -> list[PendingRequest]:
    return push_approvals.pending_for(db, svc, signed_by_device(db, svc, signed))


def approve(db: Session, svc: Services, signed: SignedRequest, request_id: str, body: dict[str, object],
            source_ip: str | None) -> None:
    device = signed_by_device(db, svc, signed)
    push_approvals.approve(db, svc, device, request_id, body.get("number"), source_ip)


def deny(db: Session, svc: Services, signed: SignedRequest, request_id: str, body: dict[str, object],
         source_ip: str | None) -> tuple[AuthStatus, list[str]]:
    device = signed_by_device(db, svc, signed)
    fraud = body.get("fraud", False)
    if not isinstance(fraud, bool):
        raise BadRequest("'fraud' must be true or false.", field="fraud")
    return push_approvals.deny(db, svc, device, request_id, fraud, source_ip)


def update_subscription(db: Session, svc: Services, signed: SignedRequest, body: dict[str, object]) -> None:
    device = signed_by_device(db, svc, signed)
    push_enrolment.update_subscription(db, svc, device, body.get("subscription"))
