"""Smart lockout: failed passwords and codes lock the source they came from, not everyone.

The rule (docs/lockout.md):

- A source is the address a sign-in came from (after TRUSTED_PROXIES): an IPv4 address, or
  the /64 prefix of an IPv6 address (one household or phone network hands out a whole /64).
  It is kept only as a keyed hash (FamiliarSource.source_hash).
- A sign-in through the JSON API (Authentication.api_key_id) carries the relying application's
  address, not the person's: it never makes its source familiar, and its failures always count
  as unfamiliar (`via_api`). Anyone can type wrong passwords into a relying application's login
  form, so they can lock at most the unfamiliar path (that application's API sign-ins
  included), never the person's familiar page sign-ins.
- A source becomes *familiar* to a person once they complete a sign-in from it: with the
  second factor, or with the password alone where policy asks no second factor
  (authentications.finish calls approving; _open, signed_in), on the server's own pages. A right
  password alone never makes it familiar.
  Until a person has a familiar source every source is unfamiliar to them (as Entra learns
  locations): a brand-new account under attack is locked as it always was, and learns its
  first familiar source at its first completed sign-in.
- Failures from familiar sources count in `failed_count`, from unfamiliar ones in
  `unfamiliar_failed_count`; each locks at LOCKOUT_THRESHOLD. An unfamiliar lockout refuses
  unfamiliar sources only: the person still signs in from home. A familiar lockout refuses
  every source: a familiar source is the most trusted one, so guessing from it is the worst
  case and nothing less trusted may go on meanwhile (it is also what User.is_locked means,
  the check every later step makes).
- App passwords count apart (`app_password_failed_count`, APP_PASSWORD_LOCKOUT_THRESHOLD):
  a mail client is never locked out by an attack on the sign-in page, nor the reverse. An app
  password is a 75-bit random secret, so guessing online cannot succeed and a lockout could
  only deny service: at the threshold the app-password lock is recorded and audited (`users
  show`, `users unlock`), and refuses wrong app passwords (uncounted), but a matching one is
  still accepted. A fraud block refuses both.
- Each sign-in lockout lasts BASE_DURATION x 2^(lockouts before it) up to LONGEST; `lockouts`
  goes back to 0 at a completed sign-in. App-password locks stay at BASE_DURATION: they are
  against noise, not guessing.
- Never more than 100 failures in a row without a lockout (NIST SP 800-63B-4 §3.2.2): each
  counter locks at its threshold, and each threshold is capped at HIGHEST_THRESHOLD, so the
  three counters together let at most 3 x (33 - 1) = 96 failures through between lockouts
  (with the defaults 10, 10 and 20: at most 2 x 9 = 18 sign-in failures, 19 app-password ones).
"""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models import FamiliarSource, User
from mfa import audit, limits
from mfa.browser_sessions import end_all_for_user
from mfa.compare_and_set import compare_and_set, remember
from mfa.locks import is_sqlite, lock_person
from mfa.services import Services

BASE_DURATION = timedelta(minutes=15)  # the first lockout; each one after it twice as long
LONGEST = timedelta(hours=24)
MOST_FAILURES_IN_A_ROW = 100  # NIST SP 800-63B-4 §3.2.2
HIGHEST_THRESHOLD = 33  # per counter: three counters x 32 failures stay under 100
IPV6_PREFIX = 64
NO_ONE = "0" * 32  # an id never issued: the same statements for an unknown username

COUNTERS = ("failed_count", "unfamiliar_failed_count", "lockouts")
CLEARED: dict[str, Any] = {
    "failed_count": 0, "locked_until": None, "unfamiliar_failed_count": 0, "unfamiliar_locked_until": None,
    "app_password_failed_count": 0, "app_password_locked_until": None, "lockouts": 0,
}


# --- sources -------------------------------------------------------------------------


def source_key(source_ip: str | None) -> str | None:
    """What counts as one source: the IPv4 address, or the IPv6 address's /64 (None: unknown)."""
    if not source_ip:
        return None
    try:
        address = ipaddress.ip_address(source_ip.strip())
    except ValueError:
        return source_ip[:64]  # not an address (client_ip always gives one): itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def _labelled(key: str) -> str:
    return f"familiar-source:{key}"  # its own hashes, never equal to a phone number's or a code's


def is_familiar(db: Session, svc: Services, user_id: str, source_ip: str | None) -> bool:
    """Has the person completed a sign-in from this source? (Under any current hash key.)"""
    key = source_key(source_ip)
    if key is None:
        return False
    return db.scalar(select(FamiliarSource.user_id).where(
        FamiliarSource.user_id == user_id,
        FamiliarSource.source_hash.in_(svc.vault.keyed_hashes(_labelled(key))),
    ).limit(1)) is not None


def remember_source(db: Session, svc: Services, user_id: str, source_ip: str | None) -> None:
    """Make the source familiar (insert if absent, else move its last_seen_at): one statement."""
    key = source_key(source_ip)
    if key is None:
        return
    now = svc.clock.now()
    insert = sqlite_insert if is_sqlite(db) else pg_insert
    statement = insert(FamiliarSource).values(user_id=user_id, source_hash=svc.vault.keyed_hash(_labelled(key)),
                                              first_seen_at=now, last_seen_at=now)
    db.execute(statement.on_conflict_do_update(
        index_elements=[FamiliarSource.user_id, FamiliarSource.source_hash], set_={"last_seen_at": now}))


# --- the rule ------------------------------------------------------------------------


def threshold(svc: Services) -> int:
    return min(svc.limits.number(limits.LOCKOUT_THRESHOLD), HIGHEST_THRESHOLD)


def app_password_threshold(svc: Services) -> int:
    return min(svc.limits.number(limits.APP_PASSWORD_LOCKOUT_THRESHOLD), HIGHEST_THRESHOLD)


def duration(lockouts_before: int) -> timedelta:
    """How long a sign-in lockout lasts, after `lockouts_before` since the last completed sign-in."""
    doubled: timedelta = BASE_DURATION * 2 ** min(lockouts_before, 16)
    return min(doubled, LONGEST)


def _future(when: datetime | None, now: datetime) -> bool:
    return when is not None and when > now


def refuses(user: User, now: datetime, familiar: bool) -> bool:
    """Is a sign-in from a (familiar or unfamiliar) source refused now? A fraud block and a
    familiar lockout refuse every source (User.is_locked); an unfamiliar one the unfamiliar only."""
    return user.is_locked(now) or (not familiar and _future(user.unfamiliar_locked_until, now))


def _in_force(now: datetime, familiar: bool) -> ColumnElement[bool]:
    """refuses(), in SQL (never NULL): a fraud block, a familiar lockout, or for an unfamiliar
    source an unfamiliar one."""
    locks = [User.locked_until] if familiar else [User.locked_until, User.unfamiliar_locked_until]
    return or_(User.fraud_blocked_at.is_not(None), *(and_(until.is_not(None), until > now) for until in locks))


def app_passwords_refused(user: User, now: datetime, matched: bool = False) -> bool:
    """App passwords: a fraud block refuses every one; their own lock refuses only wrong ones
    (`matched`: the app password is right: 75 random bits are never guessed, so the lock is a
    record, not a barrier). A sign-in lockout never refuses them."""
    return user.fraud_blocked_at is not None or (not matched and _future(user.app_password_locked_until, now))


def hold(db: Session, user: User | None, *names: str) -> None:
    """Lock the person's row (mfa/locks.py order: after the challenges, before the sign-in) and
    read the named columns fresh, so a decision made on them holds until commit. With no person,
    the same statements for an id never issued (an unknown username takes as long)."""
    user_id = user.id if user is not None else NO_ONE
    columns = [getattr(User, name) for name in names]
    query = select(*columns).where(User.id == user_id)
    if is_sqlite(db):
        lock_person(db, user_id)  # SQLite: the write lock, then a read nobody can change under us
    else:
        query = query.with_for_update()
    fresh = db.execute(query).one_or_none()
    if user is not None and fresh is not None:
        remember(user, **dict(zip(names, fresh, strict=True)))


# --- web sign-ins (passwords and second-factor codes) --------------------------------


def record_failure(db: Session, svc: Services, user: User, source_ip: str | None, *,
                   familiar: bool | None = None, via_api: bool = False) -> bool:
    """Count one failed password or code from `source_ip` on its counter; lock at the threshold.

    Atomic: one UPDATE ... RETURNING that counts only while no lockout refuses the source (it
    holds the row until commit), so twenty failures at once count up to the threshold, lock
    once, and the rest find the lockout and count nothing. True when the source is locked out
    after this failure: this one locked it, or a lockout already refused it (a password checked,
    or a sign-in begun, before the lockout: the caller refuses it, ending the sign-in).
    `via_api`: a sign-in through the JSON API, whose source is the relying application: unfamiliar.
    """
    if via_api:
        familiar = False
    elif familiar is None:
        familiar = is_familiar(db, svc, user.id, source_ip)
    name = "failed_count" if familiar else "unfamiliar_failed_count"
    until_name = "locked_until" if familiar else "unfamiliar_locked_until"
    counter = getattr(User, name)
    now = svc.clock.now()
    counted = db.execute(
        update(User).where(User.id == user.id, not_(_in_force(now, familiar))).values({counter: counter + 1})
        .returning(counter, User.lockouts)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if counted is None:
        return True  # a lockout (or a fraud block) refuses this source already: nothing to count
    count, lockouts = counted
    remember(user, **{name: count, "lockouts": lockouts})
    most = threshold(svc)
    if count < most:
        return False
    until = now + duration(lockouts)
    locked = compare_and_set(db, user, where=[counter >= most],
                             **{name: 0, until_name: until, "lockouts": lockouts + 1})
    if locked:
        if familiar:
            end_all_for_user(db, user.id)  # guessing from a familiar source: every browser signs in again
        # (an unfamiliar lockout leaves the person's sessions alone: ending them is what an attacker would want)
        audit.record(
            db, svc.clock, "account_locked", "locked", user=user, source_ip=source_ip,
            reason="too_many_failures",
            detail=f"{'familiar' if familiar else 'unfamiliar'} sources until {until.isoformat()} "
                   f"(lockout {lockouts + 1} since the last sign-in)",
        )
    return True  # this failure locked the source, or (never, under the row lock) another one just did


def approving(db: Session, svc: Services, user: User, source_ip: str | None, *, via_api: bool = False) -> None:
    """A second factor just checked from the sign-in's source, before its approval is written:
    the source becomes familiar (one statement; never `via_api`, a relying application's), and
    the person is locked first if their failures are to be reset after (callers lock them only
    for `failed_count`)."""
    if any(getattr(user, name) for name in COUNTERS):
        lock_person(db, user.id)
    if not via_api:
        remember_source(db, svc, user.id, source_ip)


def signed_in(db: Session, svc: Services, user: User, source_ip: str | None, *, via_api: bool = False) -> None:
    """A completed sign-in: its source becomes familiar (not `via_api`), and the chain of failures
    ends (both sign-in counters and the lockout growth back to 0; locks still in force stay)."""
    if not via_api:
        remember_source(db, svc, user.id, source_ip)
    reset_failures(db, user)


def reset_failures(db: Session, user: User) -> None:
    """Both sign-in counters and `lockouts` back to 0 (nothing written when they are already)."""
    if not any(getattr(user, name) for name in COUNTERS):
        return  # the common case: nothing to write
    zeros = dict.fromkeys(COUNTERS, 0)
    db.execute(update(User).where(User.id == user.id).values(**zeros).execution_options(synchronize_session=False))
    remember(user, **zeros)


# --- app passwords -------------------------------------------------------------------


def record_app_password_failure(db: Session, svc: Services, user: User | None, source_ip: str | None) -> bool:
    """Count one wrong app password (the same statement for an unknown username, matching no
    row); at the threshold record (and audit) the app-password lock, which refuses wrong app
    passwords only (app_passwords_refused). True if this one set it."""
    count = db.execute(
        update(User).where(User.id == (user.id if user is not None else NO_ONE))
        .values(app_password_failed_count=User.app_password_failed_count + 1)
        .returning(User.app_password_failed_count)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if user is None or count is None:
        return False
    remember(user, app_password_failed_count=count)
    most = app_password_threshold(svc)
    if count < most:
        return False
    until = svc.clock.now() + BASE_DURATION
    locked = compare_and_set(db, user, where=[User.app_password_failed_count >= most],
                             app_password_failed_count=0, app_password_locked_until=until)
    if locked:
        audit.record(db, svc.clock, "app_passwords_locked", "locked", user=user, source_ip=source_ip,
                     reason="too_many_failures",
                     detail=f"wrong app passwords uncounted until {until.isoformat()}; right ones still work; "
                            "sign-ins are not locked")
    return locked


def reset_app_password_failures(db: Session, user: User) -> None:
    if not user.app_password_failed_count:
        return
    db.execute(update(User).where(User.id == user.id).values(app_password_failed_count=0)
               .execution_options(synchronize_session=False))
    remember(user, app_password_failed_count=0)


# --- the helpdesk --------------------------------------------------------------------


def clear(user: User) -> str:
    """`users unlock`: every counter and lock cleared (and a fraud block); what there was, for the audit."""
    now_locked = [what for what, until in (("lockout", user.locked_until),
                                           ("unfamiliar_lockout", user.unfamiliar_locked_until),
                                           ("app_password_lockout", user.app_password_locked_until)) if until]
    was = "fraud_block" if user.fraud_blocked_at else (",".join(now_locked) or "none")
    for name, value in CLEARED.items():
        setattr(user, name, value)
    user.fraud_blocked_at = None
    return was
