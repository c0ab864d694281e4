"""Account passwords: argon2id through argon2-cffi."""
from __future__ import annotations

import threading
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mfa.errors import BadRequest

MIN_LENGTH = 10
MAX_LENGTH = 1024


# OWASP's recommended argon2id minimum (19 MiB, 2 passes, 1 lane). The library's default
# (64 MiB) times four threads per worker broke the 150 MB per-worker budget at sign-in peaks.
DEFAULT_HASHER: dict[str, Any] = dict(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# At most this many hashes at once per process: memory stays bounded whatever the thread count.
CONCURRENT_HASHES = 2


class Passwords:
    """Hashing with one argon2id parameter set; stored hashes with older parameters are
    upgraded at the next correct sign-in. Tests pass a cheaper hasher."""

    def __init__(self, hasher: PasswordHasher | None = None):
        self._hasher = hasher or PasswordHasher(**DEFAULT_HASHER)
        self._slots = threading.BoundedSemaphore(CONCURRENT_HASHES)
        # Checked when the username is unknown, so both paths take as long.
        self._dummy = self._hasher.hash("not a real password")

    def hash(self, password: str) -> str:
        if not isinstance(password, str) or len(password) < MIN_LENGTH:
            raise BadRequest(f"Passwords need at least {MIN_LENGTH} characters.", code="weak_password")
        if len(password) > MAX_LENGTH:
            raise BadRequest("That password is too long.")
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            with self._slots:
                ok = self._hasher.verify(password_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and password_hash is not None

    def rehash_if_needed(self, password_hash: str, password: str) -> str:
        """The stored hash, or a fresh one when the parameters have changed."""
        if self._hasher.check_needs_rehash(password_hash):
            with self._slots:
                return self._hasher.hash(password)
        return password_hash
