"""Domain objects as the JSON of docs/api.md."""
from __future__ import annotations

from datetime import datetime

from models import Authentication, Challenge, Method
from models.states import AuthStatus, ChallengeStatus
from mfa.checks import MAX_CODE_ATTEMPTS


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def method_json(method: Method) -> dict:
    return {"id": method.id, "type": method.type, "label": method.label, "default": method.is_default}


def authentication_json(auth: Authentication) -> dict:
    methods = auth.user.verified_methods() if auth.status != AuthStatus.REGISTRATION_REQUIRED else []
    return {
        "id": auth.id,
        "status": auth.status,
        "reason": auth.reason,
        "expires_at": iso(auth.expires_at),
        "attempts_left": max(0, MAX_CODE_ATTEMPTS - auth.attempts),
        "methods": [method_json(m) for m in methods],
    }


def challenge_json(challenge: Challenge) -> dict:
    out = {
        "status": ChallengeStatus.PENDING.value,
        "method_id": challenge.method_id,
        "type": challenge.type,
        "expires_at": iso(challenge.expires_at),
    }
    if challenge.number_match:
        out["number_match"] = challenge.number_match
    return out
