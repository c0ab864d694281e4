"""Every request from a phone app is signed with the key it made when it was set up.

The device signs, with ECDSA P-256 / SHA-256, the canonical string of the request: its method,
path, the SHA-256 of its body, a timestamp and a nonce (docs/push.md, "Device protocol"). The
server keeps only the public key. A request that is unsigned, signed by another key, more than
MAX_SKEW from the server's clock, or a nonce seen before (a replay) is refused before anything
changes. Nonces are kept for longer than a timestamp stays acceptable, so an old request can
be replayed neither inside the window (its nonce is known) nor after it (it is stale).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models import DeviceNonce, PushDevice
from models.base import is_id
from mfa.errors import BadRequest, InvalidSignature
from mfa.locks import is_sqlite
from mfa.services import Services

SCHEME = "MFA-DEVICE-V1"
MAX_SKEW = timedelta(seconds=60)
KEEP_NONCES = 2 * MAX_SKEW + timedelta(seconds=30)
NONCE = re.compile(r"[A-Za-z0-9_-]{22,64}")
TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class SignedRequest:
    """What the edge read from one HTTP request; the domain decides whether it is good."""

    method: str
    path: str  # with "?query" when there is one
    body: bytes
    device_id: str
    timestamp: str
    nonce: str
    signature: str  # base64url of r||s, 64 bytes


def canonical(method: str, path: str, body: bytes, timestamp: str, nonce: str, device_id: str) -> bytes:
    return "\n".join([SCHEME, method.upper(), path, hashlib.sha256(body).hexdigest(), timestamp, nonce,
                      device_id]).encode()


def b64url_decode(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


def public_key_from(encoded: object) -> ec.EllipticCurvePublicKey:
    """A device's public key from its base64url uncompressed point; BadRequest if it is not one."""
    try:
        raw = b64url_decode(encoded) if isinstance(encoded, str) and len(encoded) < 200 else b""
        if len(raw) != 65:
            raise ValueError("not an uncompressed P-256 point")
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise BadRequest("'public_key' must be a P-256 public key: the base64url of its 65-byte "
                         "uncompressed point.", field="public_key") from None


def verify_with(public_key: ec.EllipticCurvePublicKey, request: SignedRequest, svc: Services) -> None:
    """The signature is by this key over this request, and its timestamp is fresh."""
    if not (TIMESTAMP.fullmatch(request.timestamp) and NONCE.fullmatch(request.nonce)):
        raise InvalidSignature()
    age = abs(svc.clock.now().timestamp() - int(request.timestamp))
    if age > MAX_SKEW.total_seconds():
        raise InvalidSignature("This request's time is too far from the server's: check the phone's clock.")
    try:
        raw = b64url_decode(request.signature)
    except ValueError:
        raise InvalidSignature() from None
    if len(raw) != 64:
        raise InvalidSignature()
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    message = canonical(request.method, request.path, request.body, request.timestamp, request.nonce,
                        request.device_id)
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except BadSignature:
        raise InvalidSignature() from None


def signed_by_device(db: Session, svc: Services, request: SignedRequest) -> PushDevice:
    """The enrolled device that signed this request, its nonce now spent; InvalidSignature otherwise."""
    device = db.get(PushDevice, request.device_id) if is_id(request.device_id) else None
    if device is None or device.public_key is None:  # unknown, removed, or not yet enrolled
        raise InvalidSignature()
    verify_with(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), device.public_key), request, svc)
    _spend_nonce(db, svc, device.id, request.nonce)
    return device


def _spend_nonce(db: Session, svc: Services, device_id: str, nonce: str) -> None:
    """Insert-if-absent on (device, nonce): of two requests with one nonce, racing or not, one wins.

    The loser waits on PostgreSQL for the winner's commit and then inserts nothing."""
    now = svc.clock.now()
    db.execute(delete(DeviceNonce).where(DeviceNonce.device_id == device_id, DeviceNonce.seen_at < now - KEEP_NONCES)
               .execution_options(synchronize_session=False))
    insert = sqlite_insert if is_sqlite(db) else pg_insert
    fresh = db.scalar(insert(DeviceNonce).values(device_id=device_id, nonce=nonce, seen_at=now)
                      .on_conflict_do_nothing().returning(DeviceNonce.nonce))
    if fresh is None:  # (a rowcount would say -1 here on PostgreSQL's driver: the returned row is certain)
        raise InvalidSignature("This request has been sent before.")
