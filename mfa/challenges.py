"""Starting a challenge (call, text or push) for a sign-in."""
from __future__ import annotations

from sqlalchemy.orm import Session

from models import Challenge
from mfa.authentications import get
from mfa.errors import NotPending, Unprocessable
from mfa.methods import owned_verified_method
from mfa.services import Services

CHALLENGE_STATUSES = ("mfa_required", "pending")


def start_challenge(db: Session, svc: Services, auth_id, method_id, source_ip) -> Challenge:
    auth = get(db, svc, auth_id)
    if auth.status not in CHALLENGE_STATUSES:
        raise NotPending(f"This sign-in is not waiting for a second factor ({auth.status}).")
    method = owned_verified_method(auth.user, method_id)
    if method.type == "totp":
        raise Unprocessable(
            "Authenticator-app codes need no challenge: send the code to /checks.",
            code="no_challenge_needed",
        )
    raise Unprocessable(
        f"Verification by {method.type} is not available on this server yet.",
        code="method_not_available",
    )
