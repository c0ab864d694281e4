"""Remembered browsers: "don't ask again on this browser for N days" (REMEMBER_BROWSER_DAYS).

After a second factor, the person may have this browser remembered: it gets a random token
(`secrets.token_urlsafe`, 256 bits) in a cookie, and the table keeps only its HMAC keyed from
DATA_KEY, so a copy of the table skips nobody's second step. A token skips the second step only
for the person it was made for, only while the policy still allows remembering for their role
(for no longer than it allows now), and only until its row goes: the person forgets it on security
info, and sign-out everywhere, a lockout, a fraud report, an unlock, a method reset or a method
change forget all of the person's browsers (browser_sessions.end_all_for_user).
No Flask here: web/remember_browser.py is the cookie side.
"""
from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from typing import TypeGuard

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models import RememberedBrowser, User
from mfa import audit
from mfa.errors import NotFound, Unprocessable
from mfa.services import Services
from mfa.unit_of_work import rows_changed
from mfa.vault import Vault

# Keyed hashes of these tokens can never be confused with a phone number's or a code's.
HASH_PREFIX = "remembered-browser:"
TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
TOKEN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")
LABEL_LENGTH = 100
# A person's list stays short enough to read, and a stolen password cannot pile up browsers.
MAX_PER_PERSON = 10


def is_token(value: object) -> TypeGuard[str]:
    """Shaped like one of our tokens: anything else is not looked up at all."""
    return isinstance(value, str) and 40 <= len(value) <= 64 and set(value) <= TOKEN_CHARACTERS


def _hashes(vault: Vault, token: str) -> list[str]:
    """The token's hash under every current DATA_KEY; the first is the newest key's."""
    return vault.keyed_hashes(HASH_PREFIX + token)


def _ends_at(row: RememberedBrowser, days: int) -> datetime:
    """The earlier of the end promised when it was remembered and the end today's policy allows."""
    return min(row.expires_at, row.created_at + timedelta(days=days))


def remember(db: Session, svc: Services, user: User, label: str, replacing: object) -> tuple[str, datetime]:
    """Remember this browser for the person; returns the cookie's token (stored only hashed) and
    when it ends. `replacing`: the token the browser held before, whoever's it was: it is forgotten,
    since the browser can hold only one. Beyond MAX_PER_PERSON, the oldest are forgotten."""
    days = svc.policy.remember_days_for(user)
    if days <= 0:
        raise Unprocessable("This browser cannot be remembered for your account.", code="remember_not_allowed")
    forget_token(db, svc, replacing)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = svc.clock.now()
    row = RememberedBrowser(user_id=user.id, token_hash=_hashes(svc.vault, token)[0],
                            label=(label or "A browser")[:LABEL_LENGTH], created_at=now,
                            expires_at=now + timedelta(days=days))
    db.add(row)
    db.flush()
    audit.record(db, svc.clock, "browser_remembered", "ok", user=user, detail=f"{row.id} for {days} day(s)")
    _forget_beyond_cap(db, svc, user, keep=row)
    return token, row.expires_at


def _forget_beyond_cap(db: Session, svc: Services, user: User, keep: RememberedBrowser) -> None:
    """Forget the person's oldest browsers (by created_at) past MAX_PER_PERSON, in this transaction;
    never `keep`, the one just remembered."""
    rows = list(db.scalars(select(RememberedBrowser).where(RememberedBrowser.user_id == user.id,
                                                           RememberedBrowser.id != keep.id)
                           .order_by(RememberedBrowser.created_at.desc(), RememberedBrowser.id.desc())))
    for old in rows[MAX_PER_PERSON - 1:]:
        db.delete(old)
        audit.record(db, svc.clock, "remembered_browser_forgotten", "ok", user=user, reason="too_many_browsers",
                     detail=f"{old.id}: more than {MAX_PER_PERSON} remembered")
    db.flush()


def skips_second_step(db: Session, svc: Services, user: User, token: object) -> RememberedBrowser | None:
    """The person's remembered browser holding `token`, still valid today; it notes the use.

    None for a token of someone else, an unknown, ended or malformed one, or when the policy
    no longer allows remembering for this person's role.
    """
    if not is_token(token):
        return None
    days = svc.policy.remember_days_for(user)
    if days <= 0:
        return None
    hashes = _hashes(svc.vault, token)
    row = db.scalar(select(RememberedBrowser).where(RememberedBrowser.token_hash.in_(hashes),
                                                    RememberedBrowser.user_id == user.id))
    now = svc.clock.now()
    if row is None or now >= _ends_at(row, days):
        return None
    # Conditional, so a row forgotten meanwhile (sign-out everywhere in another request) is not used.
    if rows_changed(db, update(RememberedBrowser)
                    .where(RememberedBrowser.id == row.id, RememberedBrowser.token_hash.in_(hashes))
                    .values(last_used_at=now, token_hash=hashes[0])  # moved onto the newest DATA_KEY
                    .execution_options(synchronize_session=False)) != 1:
        return None
    return row


def list_for(db: Session, svc: Services, user: User) -> list[tuple[RememberedBrowser, datetime]]:
    """The person's remembered browsers that can still skip the second step, newest first, each
    with when it stops."""
    days = svc.policy.remember_days_for(user)
    if days <= 0:
        return []
    now = svc.clock.now()
    rows = db.scalars(select(RememberedBrowser).where(RememberedBrowser.user_id == user.id)
                      .order_by(RememberedBrowser.created_at.desc()))
    return [(row, _ends_at(row, days)) for row in rows if now < _ends_at(row, days)]


def is_this_browser(svc: Services, row: RememberedBrowser, token: object) -> bool:
    return is_token(token) and svc.vault.matches(HASH_PREFIX + token, row.token_hash)


def forget(db: Session, svc: Services, user: User, browser_id: object, source_ip: str | None) -> RememberedBrowser:
    """The person forgets one of their remembered browsers (another person's is not found)."""
    row = db.scalar(select(RememberedBrowser).where(RememberedBrowser.id == browser_id,
                                                    RememberedBrowser.user_id == user.id)) \
        if isinstance(browser_id, str) else None
    if row is None:
        raise NotFound("That browser is not remembered for your account.", code="unknown_browser")
    db.delete(row)
    db.flush()
    audit.record(db, svc.clock, "remembered_browser_forgotten", "ok", user=user, source_ip=source_ip,
                 detail=row.id)
    return row


def forget_token(db: Session, svc: Services, token: object) -> bool:
    """Forget the browser holding `token` (the browser's own cookie: whoever holds it may drop it)."""
    if not is_token(token):
        return False
    return rows_changed(db, delete(RememberedBrowser)
                        .where(RememberedBrowser.token_hash.in_(_hashes(svc.vault, token)))
                        .execution_options(synchronize_session=False)) > 0


def forget_all(db: Session, user_id: str) -> int:
    """Every browser remembered for the person: the next sign-in anywhere asks for the second step."""
    return rows_changed(db, delete(RememberedBrowser).where(RememberedBrowser.user_id == user_id)
                        .execution_options(synchronize_session=False))


def prune(db: Session, svc: Services) -> int:
    """Delete rows past their end (indexed on expires_at)."""
    return rows_changed(db, delete(RememberedBrowser).where(RememberedBrowser.expires_at <= svc.clock.now())
                        .execution_options(synchronize_session=False))
