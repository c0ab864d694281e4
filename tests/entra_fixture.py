"""A stand-in for Microsoft Entra ID, as an external MFA provider meets it (docs/entra.md).

It has its own RSA key and certificate, serves its JWKS over real HTTP (EAM_ENTRA_KEYS_URL points
there), mints id_token_hints shaped like Microsoft's example, builds the authorize form Entra posts,
and checks the id_token that comes back exactly as Entra does: the signature against the provider's
JWKS (the key chosen by `kid`, its `x5c` certificate holding the same key), then `iss`, `aud`, `sub`,
`nonce`, `exp`, `acr` and `amr`.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
import pytest
from flask import Flask, Response
from werkzeug.serving import make_server

TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
OTHER_TENANT = "bbbbcccc-1111-dddd-2222-eeee3333ffff"
APP_ID = "00001111-aaaa-2222-bbbb-3333cccc4444"  # the app registration Entra mints hints for
CLIENT_ID = "11112222-bbbb-3333-cccc-4444dddd5555"  # what the tenant administrator entered as Client ID
ISSUER = "https://mfa.example.test/entra"
PATH = urlsplit(ISSUER).path
REDIRECT_URI = "https://login.microsoftonline.com/common/federation/externalauthprovider"
# What Entra asks for: Microsoft's reference request.
CLAIMS = {"id_token": {"acr": {"essential": True, "values": ["possessionorinherence"]},
                       "amr": {"essential": True, "values": ["face", "fido", "fpt", "hwk", "iris", "otp", "pop",
                                                             "retina", "sc", "sms", "swk", "tel", "vbm"]}}}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def make(cls, kid: str | None = None) -> SigningKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "login.microsoftonline.com")])
        now = datetime.now().astimezone()
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(private.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
                       .sign(private, hashes.SHA256()))
        return cls(kid or _b64url(uuid.uuid4().bytes), private, certificate)

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": _b64url(hashlib.sha1(der).digest()),
                "n": _b64url(numbers.n.to_bytes(256, "big")), "e": _b64url(numbers.e.to_bytes(3, "big")),
                "x5c": [base64.b64encode(der).decode()], "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"}


@dataclass
class Hinted:
    """A minted hint and what the answer must carry back about it."""

    token: str
    sub: str
    oid: str
    tid: str


@dataclass
class EntraPlayer:
    """Entra, for one test: its keys (served over HTTP), its hints, its checks of our answers."""

    key: SigningKey = field(default_factory=SigningKey.make)
    published: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    failing: bool = False  # the keys endpoint answers 503 (Microsoft unreachable)

    def __post_init__(self):
        self.published = [self.key]
        app = Flask("entra-keys")
        app.add_url_rule("/common/discovery/v2.0/keys", "keys", self._keys)
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.keys_url = f"http://127.0.0.1:{self._server.server_port}/common/discovery/v2.0/keys"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _keys(self) -> Response:
        self.fetches += 1
        if self.failing:
            return Response("unavailable", status=503)
        return Response(json.dumps({"keys": [k.jwk() for k in self.published]}), mimetype="application/json")

    @property
    def settings(self) -> dict[str, str]:
        """The server's EAM_* settings for this Entra."""
        return {"EAM_ISSUER": ISSUER, "EAM_CLIENT_ID": CLIENT_ID, "EAM_APP_ID": APP_ID,
                "EAM_ALLOWED_TENANTS": TENANT, "EAM_ENTRA_KEYS_URL": self.keys_url}

    # --- the request ---------------------------------------------------------------------

    def hint(self, now: datetime, *, oid: str | None = None, tid: str = TENANT, aud: str = APP_ID,
             iss: str | None = None, key: SigningKey | None = None, kid: str | None = None,
             drop: tuple[str, ...] = (), **extra: Any) -> Hinted:
        """An id_token_hint as Entra mints it: already expired (`exp` = `iat`), judged by `iat`."""
        oid = oid or str(uuid.uuid4())
        sub = _b64url(hashlib.sha256(f"{tid}{oid}".encode()).digest())[:43]
        issued = int(now.timestamp())
        claims = {"aud": aud, "iss": iss or f"https://login.microsoftonline.com/{tid}/v2.0", "iat": issued,
                  "nbf": issued, "exp": issued, "name": "Alice Admin", "oid": oid,
                  "preferred_username": "alice@example.nhs.uk", "sub": sub, "tid": tid,
                  "uti": _b64url(uuid.uuid4().bytes), "ver": "2.0", **extra}
        for name in drop:
            claims.pop(name, None)
        signer = key or self.key
        token = jwt.encode(claims, signer.private, algorithm="RS256", headers={"kid": kid or signer.kid, "typ": "JWT"})
        return Hinted(token, sub, oid, tid)

    def form(self, hint: Hinted | str, *, nonce: str | None = None, state: str | None = None,
             claims: Any = CLAIMS, **overrides: str) -> dict[str, str]:
        """The form Entra posts to the authorization endpoint."""
        form = {
            "scope": "openid", "response_mode": "form_post", "response_type": "id_token",
            "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
            "claims": claims if isinstance(claims, str) else json.dumps(claims),
            "nonce": nonce or str(uuid.uuid4()), "state": state or _b64url(uuid.uuid4().bytes * 4),
            "login_hint": "alice@example.nhs.uk", "client-request-id": str(uuid.uuid4()),
            "id_token_hint": hint if isinstance(hint, str) else hint.token,
        }
        form.update(overrides)
        return form

    # --- the answer ----------------------------------------------------------------------

    def validate(self, web, id_token: str, *, form: dict[str, str], hint: Hinted, now: datetime) -> dict[str, Any]:
        """Check our id_token as Entra does; returns its claims (AssertionError on any failure)."""
        discovery = web.get(f"{PATH}/.well-known/openid-configuration").get_json()
        assert discovery["issuer"] == ISSUER
        jwks = web.get(urlsplit(discovery["jwks_uri"]).path).get_json()
        header = jwt.get_unverified_header(id_token)
        assert header["alg"] == "RS256"
        published = {k["kid"]: k for k in jwks["keys"]}
        assert header["kid"] in published, "signed with a key the JWKS does not publish"
        jwk = published[header["kid"]]
        certificate = x509.load_der_x509_certificate(base64.b64decode(jwk["x5c"][0]))
        public = certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        from_jwk = jwt.PyJWK(jwk).key
        assert from_jwk.public_numbers() == public.public_numbers(), "x5c and n/e disagree"
        assert jwk["x5t"] == _b64url(hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).digest())
        claims = jwt.decode(id_token, public, algorithms=["RS256"], audience=CLIENT_ID, issuer=ISSUER,
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
        assert claims["sub"] == hint.sub
        assert claims["nonce"] == form["nonce"]
        issued = datetime.fromtimestamp(claims["iat"]).astimezone()
        assert abs((issued - now).total_seconds()) <= 5
        assert 0 < claims["exp"] - claims["iat"] <= 300  # about 5 minutes, well inside Entra's window
        assert claims["nbf"] <= claims["iat"]
        wanted = json.loads(form["claims"])["id_token"]
        assert claims["acr"] in wanted["acr"]["values"]
        assert isinstance(claims["amr"], list) and len(claims["amr"]) == 1
        assert claims["amr"][0] in wanted["amr"]["values"]
        return claims


def read_answer(page: str) -> tuple[str, dict[str, str]]:
    """The form our answer page posts by itself: its action and fields."""
    found = re.search(r'<form id="entra-answer" method="post" action="([^"]+)"', page)
    assert found, "no answer form on the page"
    fields = {html.unescape(name): html.unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}
    return html.unescape(found.group(1)), fields


# --- fixtures: a test module imports those it uses (`from tests.entra_fixture import entra, web`) -------------
# and overrides `app_config` with the settings it needs (entra.settings, or SETTINGS for no keys server).

SETTINGS = {"EAM_ISSUER": ISSUER, "EAM_CLIENT_ID": CLIENT_ID, "EAM_APP_ID": APP_ID, "EAM_ALLOWED_TENANTS": TENANT}


@pytest.fixture
def entra():
    """Entra for one test: its keys served over HTTP until the test ends."""
    player = EntraPlayer()
    yield player
    player.stop()


@pytest.fixture
def web(live):
    """A browser of the live app (a test client), as Entra sends the person."""
    return live.app.test_client()


@pytest.fixture
def cli(app):
    """`flask --app app ...` against the test's app: cli("entra", "keys", "list")."""
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))
