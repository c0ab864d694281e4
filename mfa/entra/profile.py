"""The fixed parts of Microsoft's external-MFA profile of OpenID Connect (docs/entra.md)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from mfa.errors import MfaError

# Entra's tenant, object and application ids, in the lower case they are stored in.
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ENTRA_KEYS_URL = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
# Where Entra takes answers: worldwide, US Government and China (21Vianet). Nothing else, ever.
REDIRECT_URIS = (
    "https://login.microsoftonline.com/common/federation/externalauthprovider",
    "https://login.microsoftonline.us/common/federation/externalauthprovider",
    "https://login.partner.microsoftonline.cn/common/federation/externalauthprovider",
)
# A hint older than this is refused: Entra mints it as it sends the person here (its `exp` is already past).
HINT_MAX_AGE = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=5)
# How long the person has here, and how long our id_token is good for: both inside Entra's own window.
SIGN_IN_TTL = timedelta(minutes=5)
TOKEN_TTL = timedelta(minutes=5)
# Every method here is something the person has (their phone): Entra's acr values that one satisfies.
POSSESSION_ACRS = ("possessionorinherence", "knowledgeorpossession", "knowledgeorpossessionorinherence",
                   "possession")
DEFAULT_ACR = "possessionorinherence"
MAX_FIELD = 4096  # state, nonce and claims are Entra's and short; anything larger is not from Entra


@dataclass(frozen=True)
class EntraConfig:
    issuer: str  # EAM_ISSUER, exactly as Entra compares it
    client_id: str  # EAM_CLIENT_ID: the `aud` of our id_tokens, the `client_id` Entra sends
    app_id: str  # EAM_APP_ID: the app registration Entra mints id_token_hints for
    allowed_tenants: frozenset[str]
    keys_url: str = ENTRA_KEYS_URL
    self_link: bool = True  # EAM_SELF_LINK: an unlinked Entra user may link themselves with the local password

    @property
    def path(self) -> str:
        """Where the issuer's endpoints live on this server ("" for an issuer at the host's root)."""
        return urlsplit(self.issuer).path

    @property
    def hint_audiences(self) -> list[str]:
        return [self.app_id, self.client_id]


class Declined(MfaError):
    """The request cannot be served: Entra is told `error` (access_denied unless said otherwise)."""

    code = "access_denied"

    def __init__(self, message: str, *, why: str, error: str = "access_denied"):
        super().__init__(message)
        self.why = why  # for the audit trail and the test: which check refused it
        self.error = error


@dataclass(frozen=True)
class Wanted:
    """What Entra's `claims` asks our id_token to say: one acr from these, one amr from these."""

    acrs: tuple[str, ...]
    amrs: tuple[str, ...] | None  # None: Entra named no amr, any of ours will do

    def acr(self) -> str:
        """The first requested acr a possession factor satisfies."""
        for acr in self.acrs:
            if acr in POSSESSION_ACRS:
                return acr
        raise Declined("None of the assurance levels Entra asked for (acr) can be met by a phone or app.",
                       why="acr_not_met")

    def allows(self, amr: str) -> bool:
        return self.amrs is None or amr in self.amrs


def parse_claims(raw: str | None) -> Wanted:
    """Entra's `claims` request parameter: {"id_token": {"acr": {"values": [...]}, "amr": {"values": [...]}}}."""
    if raw is None or raw == "":
        return Wanted((DEFAULT_ACR,), None)
    try:
        claims = json.loads(raw)
    except (ValueError, RecursionError):
        raise Declined("The claims parameter is not JSON.", why="malformed_claims") from None
    id_token = claims.get("id_token", {}) if isinstance(claims, dict) else None
    if not isinstance(id_token, dict):
        raise Declined("The claims parameter must be an object with an id_token object.", why="malformed_claims")
    acrs = _values(id_token, "acr")
    amrs = _values(id_token, "amr")
    return Wanted(acrs if acrs is not None else (DEFAULT_ACR,), amrs)


def _values(id_token: dict[str, object], name: str) -> tuple[str, ...] | None:
    if name not in id_token or id_token[name] is None:
        return None
    request = id_token[name]
    if not isinstance(request, dict):
        raise Declined(f"The claims parameter's {name} must be an object.", why="malformed_claims")
    if "value" in request and "values" not in request:  # OpenID Connect's single-value form
        request = {"values": [request["value"]]}
    values = request.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise Declined(f"The claims parameter's {name} values must be a list of strings.", why="malformed_claims")
    return tuple(values)


def redirect_uri_allowed(uri: object) -> bool:
    """Exactly one of Microsoft's three: compared as whole strings, so no look-alike gets through."""
    return isinstance(uri, str) and uri in REDIRECT_URIS


def issuer_for(redirect_uri: str, tenant_id: str) -> str:
    """The issuer Entra's hints carry in the cloud this request came from."""
    return f"https://{urlsplit(redirect_uri).hostname}/{tenant_id}/v2.0"
