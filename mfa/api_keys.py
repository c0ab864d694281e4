"""API keys for relying applications: shown once, stored as SHA-256."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ApiKey
from mfa import audit
from mfa.clock import Clock
from mfa.errors import BadRequest, Conflict, NotFound
from mfa.services import Services
from mfa.vault import token_hash

PREFIX = "mfa_"


def create(db: Session, svc: Services, name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise BadRequest("Give the key a name of up to 100 characters.")
    if db.scalar(select(ApiKey).where(ApiKey.name == name)):
        raise Conflict(f"An API key called {name!r} already exists.", code="api_key_exists")
    key = PREFIX + secrets.token_urlsafe(32)
    db.add(ApiKey(name=name, key_hash=token_hash(key), created_at=svc.clock.now()))
    audit.record(db, svc.clock, "api_key_created", "ok", detail=name)
    return key


def authenticate(db: Session, key: str | None) -> ApiKey | None:
    if not key or not key.startswith(PREFIX) or len(key) > 100:
        return None
    return db.scalar(
        select(ApiKey).where(ApiKey.key_hash == token_hash(key), ApiKey.revoked_at.is_(None))
    )


def revoke(db: Session, svc: Services, name: str) -> ApiKey:
    key = db.scalar(select(ApiKey).where(ApiKey.name == (name or "").strip(), ApiKey.revoked_at.is_(None)))
    if key is None:
        raise NotFound(f"No active API key called {name!r}.", code="unknown_api_key")
    key.revoked_at = svc.clock.now()
    audit.record(db, svc.clock, "api_key_revoked", "ok", detail=key.name)
    return key


def list_all(db: Session) -> list[ApiKey]:
    return list(db.scalars(select(ApiKey).order_by(ApiKey.created_at)))


@dataclass(frozen=True)
class Caller:
    """The relying application an API request comes from."""

    id: str
    name: str


class KeyCache:
    """Valid keys seen in the last `seconds`, by hash: saves a query on every API call.

    One per app (worker), timed by the injected clock. The price: a revoked key keeps
    working for up to `seconds` on a worker that had it cached (docs/api.md says so);
    a worker that had not cached it refuses it at once.
    """

    def __init__(self, clock: Clock, seconds: float, size: int = 1000):
        self.clock = clock
        self.ttl = timedelta(seconds=seconds)
        self.size = size  # a handful of relying applications in practice
        self._known: dict[str, tuple[Caller, datetime]] = {}

    def authenticate(self, db: Session, key: str | None) -> Caller | None:
        digest = token_hash(key or "")
        now = self.clock.now()
        cached = self._known.get(digest)
        if cached and now - cached[1] < self.ttl:
            return cached[0]
        found = authenticate(db, key)
        if found is None:
            self._known.pop(digest, None)
            return None
        if len(self._known) >= self.size:
            self._known.clear()
        caller = Caller(found.id, found.name)
        self._known[digest] = (caller, now)
        return caller
