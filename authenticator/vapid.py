"""Checking a VAPID Authorization header (RFC 8292) the way a push service does.

Only the RFC 8292 form `vapid t=<JWT>, k=<public key>` is accepted (pywebpush 2.5 sends it); the
older `WebPush <JWT>` + Crypto-Key form is refused, so a server falling back to it is noticed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from authenticator.signing import verify_raw_signature, b64url_decode

MAX_LIFETIME = 24 * 60 * 60  # RFC 8292 section 2: exp no more than 24 hours ahead


class VapidError(Exception):
    """The Authorization header is missing, malformed, wrongly signed, or for another audience."""


@dataclass(frozen=True)
class VapidAuth:
    header: str
    public_key: str  # the k= value: the application server's key, base64url raw point
    claims: dict[str, Any]


def parse_header(header: str) -> tuple[str, str]:
    """(token, key) from `vapid t=..., k=...` (parameters in any order, comma and optional spaces)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise VapidError(f"Authorization scheme {scheme!r} is not 'vapid'")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            params[name.strip().lower()] = value.strip()
    if not params.get("t") or not params.get("k"):
        raise VapidError("Authorization lacks t= or k=")
    return params["t"], params["k"]


def verify(header: str | None, audience: str, now: float) -> VapidAuth:
    """The checked header: ES256 signature by k, aud == the endpoint's origin, exp in (now, now + 24h]."""
    if not header:
        raise VapidError("no Authorization header")
    token, key = parse_header(header)
    pieces = token.split(".")
    if len(pieces) != 3:
        raise VapidError("the token is not a JWT")
    try:
        jose = json.loads(b64url_decode(pieces[0]))
        claims = json.loads(b64url_decode(pieces[1]))
        signature = b64url_decode(pieces[2])
    except ValueError as exc:
        raise VapidError("the JWT is not base64url JSON") from exc
    if not isinstance(jose, dict) or jose.get("alg") != "ES256" or not isinstance(claims, dict):
        raise VapidError("the JWT is not ES256 over a claims object")
    if not verify_raw_signature(key, signature, f"{pieces[0]}.{pieces[1]}".encode("ascii")):
        raise VapidError("the JWT signature does not verify with k")
    if claims.get("aud") != audience:
        raise VapidError(f"aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or not now < exp <= now + MAX_LIFETIME:
        raise VapidError(f"exp {exp!r} is not within 24 hours from now")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise VapidError("sub is not a mailto: or https: contact")  # Apple's push service refuses those
    return VapidAuth(header=header, public_key=key, claims=claims)
