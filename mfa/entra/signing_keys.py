"""Our RSA keys for the id_tokens Entra receives, published in the JWKS with a self-signed certificate.

Rotation without a failed sign-in (docs/entra.md): `add` publishes a new key that does not sign yet;
once Entra's cached copy of our JWKS has turned over (a day), `promote` makes it the signing key (the
old one stays published, so tokens it signed still verify); `retire` then takes the old one out.
The private keys are encrypted with DATA_KEY, like every secret at rest.
"""
from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import EntraSigningKey
from mfa import audit
from mfa.errors import Conflict, NotFound
from mfa.locks import lock_entra_keys
from mfa.services import Services

PUBLISHED, SIGNING, RETIRED = "published", "signing", "retired"
IN_JWKS = (PUBLISHED, SIGNING)
KEY_BITS = 2048
CERTIFICATE_YEARS = 10  # self-signed: Entra trusts the key in our JWKS, not a certificate authority
# Entra keeps a provider's JWKS for up to a day: a key published for less may not be known to it yet.
ENTRA_CACHE = timedelta(hours=24)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def add(db: Session, svc: Services, issuer: str) -> EntraSigningKey:
    """A new key in the JWKS. The very first key signs at once (no Entra tenant knows any key yet)."""
    now = svc.clock.now()
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer[:64])])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=365 * CERTIFICATE_YEARS))
                   .sign(private, hashes.SHA256()))
    public_der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    lock_entra_keys(db)  # "is this the first?" and the insert, one request at a time
    first = db.scalar(select(EntraSigningKey.kid).where(EntraSigningKey.state == SIGNING).limit(1)) is None
    # Hex: a kid is typed on the command line, where one starting with '-' would read as an option.
    key = EntraSigningKey(kid=hashlib.sha256(public_der).hexdigest()[:32], state=SIGNING if first else PUBLISHED,
                          private_key=svc.vault.encrypt(pem), created_at=now,
                          certificate=certificate.public_bytes(serialization.Encoding.PEM).decode(),
                          signing_since=now if first else None)
    db.add(key)
    db.flush()
    audit.record(db, svc.clock, "entra_key", "added", detail=f"kid {key.kid} ({key.state})")
    return key


def promote(db: Session, svc: Services, kid: str, *, force: bool = False) -> EntraSigningKey:
    """Make a published key the signing key; the old signing key stays in the JWKS until retired."""
    key = _find(db, kid)
    if key.state != PUBLISHED:
        raise Conflict(f"Key {kid} is {key.state}: only a published key can be promoted.", code="key_not_published")
    now = svc.clock.now()
    if not force and now - key.created_at < ENTRA_CACHE:
        ready = key.created_at + ENTRA_CACHE
        raise Conflict(f"Key {kid} was published less than 24 hours ago: Entra may not know it yet. "
                       f"Promote it after {ready:%Y-%m-%d %H:%M} UTC (or pass --force).", code="key_too_new")
    for old in db.scalars(select(EntraSigningKey).where(EntraSigningKey.state == SIGNING)).all():
        old.state, old.signing_since = PUBLISHED, None
    key.state, key.signing_since = SIGNING, now
    audit.record(db, svc.clock, "entra_key", "promoted", detail=f"kid {kid}")
    return key


def retire(db: Session, svc: Services, kid: str) -> EntraSigningKey:
    """Out of the JWKS for good. The signing key cannot be retired: promote another first."""
    key = _find(db, kid)
    if key.state == SIGNING:
        raise Conflict(f"Key {kid} is the signing key: promote another key before retiring it.",
                       code="key_signing")
    if key.state != RETIRED:
        key.state, key.retired_at = RETIRED, svc.clock.now()
        audit.record(db, svc.clock, "entra_key", "retired", detail=f"kid {kid}")
    return key


def listed(db: Session) -> list[EntraSigningKey]:
    return list(db.scalars(select(EntraSigningKey).order_by(EntraSigningKey.created_at, EntraSigningKey.kid)))


def jwks(db: Session) -> dict[str, list[dict[str, object]]]:
    """Every published key: what Entra verifies our id_tokens with."""
    keys: list[dict[str, object]] = []
    for key in listed(db):
        if key.state not in IN_JWKS:
            continue
        certificate = x509.load_pem_x509_certificate(key.certificate.encode())
        der = certificate.public_bytes(serialization.Encoding.DER)
        public = certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)  # add() makes nothing else
        numbers = public.public_numbers()
        keys.append({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": key.kid,
            "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "x5t": _b64url(hashlib.sha1(der).digest()),  # noqa: S324  # the JWK thumbprint is SHA-1 by definition
            "x5c": [base64.b64encode(der).decode()],
        })
    return {"keys": keys}


def sign(db: Session, svc: Services, issuer: str, claims: dict[str, object]) -> str:
    """An RS256 token under the signing key (made now if this server has none yet)."""
    ensure_one(db, svc, issuer)
    key = db.scalar(select(EntraSigningKey).where(EntraSigningKey.state == SIGNING)
                    .order_by(EntraSigningKey.signing_since.desc(), EntraSigningKey.kid).limit(1))
    assert key is not None  # ensure_one made one, and the signing key is never retired
    return jwt.encode(claims, svc.vault.decrypt(key.private_key), algorithm="RS256", headers={"kid": key.kid})


def ensure_one(db: Session, svc: Services, issuer: str) -> None:
    """The first key, so the JWKS is never empty once Entra external MFA is on (one, however many ask at once)."""
    if _any_published(db):
        return
    lock_entra_keys(db)
    if not _any_published(db):  # looked at again under the lock: another request may have made it
        add(db, svc, issuer)


def _any_published(db: Session) -> bool:
    return db.scalar(select(EntraSigningKey.kid).where(EntraSigningKey.state.in_(IN_JWKS)).limit(1)) is not None


def _find(db: Session, kid: str) -> EntraSigningKey:
    key = db.get(EntraSigningKey, kid)
    if key is None:
        raise NotFound(f"No Entra signing key {kid}.", code="no_such_key")
    return key
