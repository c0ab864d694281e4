"""Account passwords: argon2id through argon2-cffi."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mfa.errors import BadRequest

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile
# Verified against when the username is unknown, so both paths take as long.
_DUMMY_HASH = _hasher.hash("not a real password")

MIN_LENGTH = 10
MAX_LENGTH = 1024


def hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise BadRequest(f"Passwords need at least {MIN_LENGTH} characters.", code="weak_password")
    if len(password) > MAX_LENGTH:
        raise BadRequest("That password is too long.", code="bad_request")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def rehash_if_needed(password_hash: str, password: str) -> str:
    """The stored hash, or a fresh one when the library's parameters have grown."""
    return _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else password_hash
