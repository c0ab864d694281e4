"""Domain objects as the JSON of docs/api.md."""
from __future__ import annotations

from datetime import datetime

from models import Authentication, Challenge, Method
from models.states import AuthStatus, ChallengeStatus
from edge import db, services
from mfa import limits, spend


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def method_json(method: Method, default: bool | None = None) -> dict:
    return {"id": method.id, "type": method.type, "label": method.label,
            "default": method.is_default if default is None else default}


def offered_methods_json(methods: list[Method]) -> list[dict]:
    """The methods a sign-in may use now: no texts or calls while the day's telephony budget is
    spent (mfa/spend.py); the default then moves to the first one left."""
    offered = spend.offered(db(), services(), methods) if methods else []
    if len(offered) == len(methods) or any(m.is_default for m in offered):
        return [method_json(m) for m in offered]
    return [method_json(m, default=i == 0) for i, m in enumerate(offered)]


def authentication_json(auth: Authentication) -> dict:
    methods = auth.user.verified_methods() if auth.status != AuthStatus.REGISTRATION_REQUIRED else []
    return {
        "id": auth.id,
        "status": auth.status,
        "reason": auth.reason,
        "expires_at": iso(auth.expires_at),
        "attempts_left": max(0, services().limits.number(limits.CODE_ATTEMPTS) - auth.attempts),
        "methods": offered_methods_json(methods),
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
