"""The id_token_hint: Entra's signed word on who is signing in (its tenant, object id and subject).

Checked as Microsoft's profile says: RS256 under a key Entra publishes (chosen by `kid`), the issuer
of an allowed tenant in the request's cloud, our App ID or Client ID as audience, and fresh by `iat`
(Entra sets `exp` already past, so `exp` and `nbf` say nothing).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

import jwt

from mfa.entra.profile import CLOCK_SKEW, GUID, HINT_MAX_AGE, MAX_FIELD, Declined, EntraConfig, issuer_for

REQUIRED = ("iss", "aud", "iat", "sub", "oid", "tid")


class KeySource(Protocol):
    def key_for(self, kid: str) -> jwt.PyJWK: ...


@dataclass(frozen=True)
class Hint:
    tenant_id: str
    object_id: str
    subject: str
    username: str | None  # preferred_username: never used to find the person
    fingerprint: str  # SHA-256 of the token: each hint starts one sign-in only


def check(token: object, config: EntraConfig, keys: KeySource, redirect_uri: str, now: datetime) -> Hint:
    if not isinstance(token, str) or not token or len(token) > MAX_FIELD * 4:
        raise Declined("The sign-in request carries no id_token_hint.", why="missing_hint")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Declined("The id_token_hint is not a signed token.", why="malformed_hint") from None
    kid = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(kid, str) or not kid:
        raise Declined("The id_token_hint must be signed RS256 with a key id.", why="bad_algorithm")
    key = keys.key_for(kid)
    try:
        claims = jwt.decode(
            token, key, algorithms=["RS256"], audience=config.hint_audiences,
            options={"require": list(REQUIRED), "verify_exp": False, "verify_nbf": False, "verify_iat": False,
                     "verify_iss": False},
        )
    except jwt.InvalidAudienceError:
        raise Declined("The id_token_hint was not issued for this provider's app.", why="wrong_audience") from None
    except jwt.MissingRequiredClaimError as missing:
        raise Declined(f"The id_token_hint has no {missing.claim}.", why=f"missing_{missing.claim}") from None
    except jwt.InvalidSignatureError:
        raise Declined("The id_token_hint's signature does not verify.", why="bad_signature") from None
    except jwt.PyJWTError:
        raise Declined("The id_token_hint could not be read.", why="malformed_hint") from None
    tenant = claims["tid"]
    if not isinstance(tenant, str) or tenant.lower() not in config.allowed_tenants:
        raise Declined("This Entra tenant is not served here.", why="tenant_not_allowed")
    if claims["iss"] != issuer_for(redirect_uri, tenant):
        raise Declined("The id_token_hint's issuer is not the tenant's Entra issuer.", why="wrong_issuer")
    issued = claims["iat"]
    if not isinstance(issued, (int, float)) or isinstance(issued, bool):
        raise Declined("The id_token_hint's iat is not a time.", why="malformed_hint")
    try:
        issued_at = datetime.fromtimestamp(issued, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise Declined("The id_token_hint's iat is not a time.", why="malformed_hint") from None
    if issued_at < now - HINT_MAX_AGE or issued_at > now + CLOCK_SKEW:
        raise Declined("The sign-in request is too old: start signing in again.", why="stale_hint")
    subject, object_id = claims["sub"], claims["oid"]
    if not isinstance(subject, str) or not subject or len(subject) > 128 or not subject.isprintable():
        raise Declined("The id_token_hint's sub is not usable.", why="missing_sub")
    if not isinstance(object_id, str) or not GUID.fullmatch(object_id.lower()):
        raise Declined("The id_token_hint's oid is not an object ID.", why="missing_oid")
    username = claims.get("preferred_username")
    return Hint(tenant.lower(), object_id.lower(), subject, username if isinstance(username, str) else None,
                hashlib.sha256(token.encode()).hexdigest())
