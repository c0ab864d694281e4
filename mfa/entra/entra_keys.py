"""Entra's token-signing keys (EAM_ENTRA_KEYS_URL), fetched with PyJWT and kept for a day.

An unknown `kid` fetches them again (Entra has rolled its keys), but at most once every few
minutes: made-up `kid`s must not make every request a round trip to Microsoft.
"""
from __future__ import annotations

import logging
from http.client import HTTPException
import threading
from datetime import datetime, timedelta

import jwt
from jwt import PyJWKClient

from mfa.clock import Clock
from mfa.entra.profile import Declined

KEEP_FOR = timedelta(days=1)
RETRY_AFTER_FAILURE = timedelta(seconds=30)  # a failed fetch is not retried by every request
REFETCH_UNKNOWN_KID_AFTER = timedelta(minutes=5)
FETCH_TIMEOUT_SECONDS = 5
log = logging.getLogger("mfa.entra")


class EntraKeys:
    def __init__(self, url: str, clock: Clock):
        self._client = PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=FETCH_TIMEOUT_SECONDS)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: datetime | None = None
        self._failed_at: datetime | None = None

    def key_for(self, kid: str) -> jwt.PyJWK:
        """The key Entra signed with; Declined when Entra has no such key, or cannot be reached
        (`temporarily_unavailable`: nothing to do with the person)."""
        with self._lock:  # one fetch at a time; the others wait and use what it got
            now = self._clock.now()
            if self._fetched_at is None or now - self._fetched_at >= KEEP_FOR:
                self._fetch(now)
            elif kid not in self._keys and now - self._fetched_at >= REFETCH_UNKNOWN_KID_AFTER:
                self._fetch(now)
            key = self._keys.get(kid)
        if key is None:
            raise Declined("The sign-in request was signed with a key Entra does not publish.", why="unknown_kid")
        return key

    def _fetch(self, now: datetime) -> None:
        if self._failed_at is not None and now - self._failed_at < RETRY_AFTER_FAILURE:
            if not self._keys:
                raise _unavailable()
            return
        try:
            jwk_set = self._client.get_jwk_set()
        # Unreachable, cut off, not JSON, or no usable key in it: PyJWT lets some of these through as they are.
        except (jwt.PyJWTError, ValueError, OSError, HTTPException) as exc:
            self._failed_at = now
            log.warning("Entra's signing keys could not be fetched: %s", exc)
            if self._keys and self._fetched_at is not None and now - self._fetched_at < KEEP_FOR * 2:
                return  # yesterday's copy serves while Microsoft is unreachable
            raise _unavailable() from None
        self._keys = {key.key_id: key for key in jwk_set.keys if key.key_id and key.key_type == "RSA"}
        self._fetched_at, self._failed_at = now, None


def _unavailable() -> Declined:
    return Declined("Entra's signing keys cannot be fetched just now.", why="entra_keys_unavailable",
                    error="temporarily_unavailable")
