"""Registering a phone by proving it answers: a texted code or a call."""
from __future__ import annotations

from sqlalchemy.orm import Session

from models import Challenge
from mfa.authentications import get
from mfa.errors import NotPending, Unprocessable
from mfa.services import Services


def register_phone(db: Session, svc: Services, auth_id, number, kind, delivery, source_ip) -> Challenge:
    auth = get(db, svc, auth_id)
    if auth.status != "registration_required":
        raise NotPending("Registration is only possible while the sign-in asks for it.")
    raise Unprocessable(
        "Phone registration is not available on this server yet; register an authenticator app.",
        code="method_not_available",
    )
