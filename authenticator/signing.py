"""Device request signatures (PUSH_SPEC "Keys and signatures"): ECDSA P-256 over a canonical string.

Deterministic given `now` and `nonce`, so tests can build stale and replayed requests.
"""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

PREFIX = "MFA-DEVICE-V1"
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    """The 65-byte uncompressed point, base64url: WebCrypto's exportKey("raw")."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return b64url(public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def new_nonce() -> str:
    return b64url(secrets.token_bytes(16))  # 22 characters


def canonical(method: str, path: str, body: bytes, timestamp: int | str, nonce: str, device_id: str) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([PREFIX, method.upper(), path, digest, str(timestamp), nonce, device_id]).encode("utf-8")


def raw_signature(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """r||s, 32 bytes each: the format WebCrypto produces (cryptography gives DER)."""
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_raw_signature(public_key_b64url: str, signature: bytes, message: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(public_key_b64url))
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        public.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_request(private_key: ec.EllipticCurvePrivateKey, method: str, path: str, body: bytes, device_id: str,
                 now: int | None = None, nonce: str | None = None) -> dict[str, str]:
    """The four X-Device-* headers for one request (device_id "" on enrol)."""
    timestamp = int(time.time()) if now is None else int(now)
    nonce = new_nonce() if nonce is None else nonce
    message = canonical(method, path, body, timestamp, nonce, device_id)
    return {
        "X-Device-Id": device_id,
        "X-Device-Timestamp": str(timestamp),
        "X-Device-Nonce": nonce,
        "X-Device-Signature": b64url(raw_signature(private_key, message)),
    }
