"""Accounts: creation, look-up, lockout after consecutive failures (mfa/lockout.py), unlocking."""
from __future__ import annotations

import re

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import Method, User
from models.user import LANGUAGES, ROLES
from mfa import audit, lockout
from mfa.browser_sessions import end_all_for_user
from mfa.errors import BadRequest, Conflict, NotFound
from mfa.services import Services
from mfa.usernames import normalise_username

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,253}$")
REGION_RE = re.compile(r"^[a-z]+(-[a-z]+)*$")


def find_user(db: Session, username: str) -> User | None:
    return db.scalar(select(User).where(User.username == normalise_username(username)))


def get_user(db: Session, username: str) -> User:
    user = find_user(db, username)
    if user is None:
        raise NotFound(f"No user called {username!r}.", code="unknown_user")
    return user


def create_user(
    db: Session,
    svc: Services,
    username: str,
    password: str,
    *,
    role: str = "user",
    region: str = "england",
    hybrid: bool = False,
    language: str = "en-GB",
) -> User:
    if not USERNAME_RE.match(username or ""):
        raise BadRequest(
            "Usernames are letters, digits and . _ @ + - (at most 254).", code="invalid_username"
        )
    if role not in ROLES:
        raise BadRequest(f"Role must be one of: {', '.join(ROLES)}.", code="invalid_role")
    if not REGION_RE.match(region or ""):
        raise BadRequest(
            "Regions are lower-case words joined by hyphens, e.g. england, northern-ireland.",
            code="invalid_region",
        )
    if language not in LANGUAGES:
        raise BadRequest(f"Language must be one of: {', '.join(LANGUAGES)}.", code="invalid_language")
    if find_user(db, username):
        raise Conflict(f"A user called {username!r} already exists.", code="user_exists")
    user = User(
        username=normalise_username(username),
        password_hash=svc.passwords.hash(password),
        role=role,
        region=region,
        hybrid=hybrid,
        language=language,
        created_at=svc.clock.now(),
    )
    db.add(user)
    db.flush()
    audit.record(db, svc.clock, "user_created", "ok", user=user, detail=f"role={role} region={region}")
    return user


def record_failure(db: Session, svc: Services, user: User, source_ip: str | None, *, via_api: bool = False) -> bool:
    """Count one failed password or code from `source_ip`; lock at the threshold (mfa/lockout.py:
    familiar and unfamiliar sources count apart; `via_api`, a sign-in through the JSON API, always
    unfamiliar). True when the source is locked out after it."""
    return lockout.record_failure(db, svc, user, source_ip, via_api=via_api)


def reset_failures(db: Session, user: User) -> None:
    """A completed sign-in: the sign-in counters and the lockout growth back to 0."""
    lockout.reset_failures(db, user)


def unlock(db: Session, svc: Services, username: str) -> User:
    user = get_user(db, username)
    was = lockout.clear(user)  # every counter and lock: sign-ins, unfamiliar sources, app passwords
    end_all_for_user(db, user.id)  # the helpdesk stepped in: nothing from before stays signed in
    audit.record(db, svc.clock, "account_unlocked", "ok", user=user, reason=was)
    return user


def reset_methods(db: Session, svc: Services, username: str) -> int:
    user = get_user(db, username)
    count = len(user.methods)
    db.execute(delete(Method).where(Method.user_id == user.id))
    db.expire(user, ["methods"])
    end_all_for_user(db, user.id)
    audit.record(db, svc.clock, "methods_reset", "ok", user=user, detail=f"{count} removed")
    return count
