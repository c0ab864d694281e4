"""Account passwords: argon2id through argon2-cffi."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mfa.errors import BadRequest

MIN_LENGTH = 10
MAX_LENGTH = 1024


class Passwords:
    """Hashing with one argon2 parameter set (the library's RFC 9106 profile by default).

    Tests pass a cheaper hasher; production keeps the default.
    """

    def __init__(self, hasher: PasswordHasher | None = None):
        self._hasher = hasher or PasswordHasher()
        # Checked when the username is unknown, so both paths take as long.
        self._dummy = self._hasher.hash("not a real password")

    def hash(self, password: str) -> str:
        if not isinstance(password, str) or len(password) < MIN_LENGTH:
            raise BadRequest(f"Passwords need at least {MIN_LENGTH} characters.", code="weak_password")
        if len(password) > MAX_LENGTH:
            raise BadRequest("That password is too long.")
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            ok = self._hasher.verify(password_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and password_hash is not None

    def rehash_if_needed(self, password_hash: str, password: str) -> str:
        """The stored hash, or a fresh one when the parameters have changed."""
        if self._hasher.check_needs_rehash(password_hash):
            return self._hasher.hash(password)
        return password_hash
