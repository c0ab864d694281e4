"""Encryption at rest and keyed hashes, all from DATA_KEY.

DATA_KEY is a list of Fernet keys, newest first. New data is written with the
newest key; every key still decrypts and still matches lookups, so a key can be
rotated in by putting it first and rotated out after `flask --app app data rotate-key`
(mfa/key_rotation.py) has re-encrypted and re-hashed the stored data under it.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations


def _derive(key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        key.encode()
    )


class Vault:
    def __init__(self, data_keys: list[str]):
        if not data_keys:
            raise ValueError("at least one data key is needed")
        self._newest = Fernet(data_keys[0])
        self._fernet = MultiFernet([Fernet(k) for k in data_keys])
        self._hash_keys = [_derive(k, b"mfa-keyed-hash-v1") for k in data_keys]

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        return self._fernet.decrypt(bytes(token)).decode()

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(bytes(token))

    def is_current(self, token: bytes) -> bool:
        """True when the newest key encrypted this token (rotating it would change nothing)."""
        try:
            self._newest.decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    def keyed_hash(self, value: str) -> str:
        """Hash for storing a low-entropy value (a phone number, a one-time code)."""
        return hmac.new(self._hash_keys[0], value.encode(), hashlib.sha256).hexdigest()

    def keyed_hashes(self, value: str) -> list[str]:
        """The value's hash under every key, for look-ups that span a rotation."""
        return [hmac.new(k, value.encode(), hashlib.sha256).hexdigest() for k in self._hash_keys]

    def matches(self, value: str, stored_hash: str | None) -> bool:
        if not stored_hash:
            return False
        found = False
        for candidate in self.keyed_hashes(value):
            found |= hmac.compare_digest(candidate, stored_hash)
        return found


def phone_lookup_matches(column: SQLCoreOperations[str], vault: Vault, number: str) -> ColumnElement[bool]:
    """The one condition for finding a number by its keyed hash: a match under any current key.

    Rows written before a rotation hold the hash under an older key until `data rotate-key`
    re-hashes them, so comparing with `keyed_hash` (the newest key) alone would miss them.
    """
    return column.in_(vault.keyed_hashes(number))


def token_hash(token: str) -> str:
    """SHA-256 for server-generated secrets with ≥ 75 bits of entropy (API keys, app passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()
