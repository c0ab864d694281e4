"""VAPID keys (RFC 8292) for Web Push: the one text form the server reads from WEBPUSH_VAPID_PRIVATE_KEY.

The private key is base64url, without padding, of the raw 32-byte P-256 private scalar (43
characters). It is what py_vapid's `Vapid.from_string` (and so `pywebpush.webpush`) reads as a
raw key, and it fits on one line of an environment file. The public key is base64url, without
padding, of the 65-byte uncompressed point: what a browser's `pushManager.subscribe` takes as
`applicationServerKey`.
"""
from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_SCALAR_BYTES = 32
_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url, no padding
_EXPECTED = ("expected base64url (no padding) of a raw 32-byte P-256 private key, 43 characters, "
             "as printed by `flask --app app push vapid-keys`")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_vapid_private_key() -> str:
    """A new VAPID private key in the form WEBPUSH_VAPID_PRIVATE_KEY takes."""
    key = ec.generate_private_key(ec.SECP256R1())
    # Leading zero bytes are kept: py_vapid tells a raw key from DER by its length of 32.
    return _b64url(key.private_numbers().private_value.to_bytes(_SCALAR_BYTES, "big"))


def _private_key(private_key: str) -> ec.EllipticCurvePrivateKey:
    if not isinstance(private_key, str) or not _FORMAT.fullmatch(private_key):
        raise ValueError(f"Malformed VAPID private key: {_EXPECTED}.")
    scalar = int.from_bytes(base64.urlsafe_b64decode(private_key + "="), "big")
    try:
        return ec.derive_private_key(scalar, ec.SECP256R1())
    except ValueError:  # zero, or not below the order of the curve
        raise ValueError("Malformed VAPID private key: the number it encodes is not a valid P-256 "
                         f"private key ({_EXPECTED}).") from None


def vapid_public_key(private_key: str) -> str:
    """The applicationServerKey devices subscribe with; ValueError if `private_key` is malformed."""
    point = _private_key(private_key).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return _b64url(point)
