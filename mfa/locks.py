"""Locks taken before counting, so a limit holds when twenty requests arrive at once.

Counting rows and then inserting one is a race: two transactions both count 14,
both insert, and a cap of 15 lets 16 through. Whoever holds the lock counts and
inserts alone. Locks are always taken in one order (two transactions taking them
in opposite orders could each wait for the other, and PostgreSQL would abort one:
"deadlock detected"):

1. the calls and texts under way (challenges): a sign-in's own, before anything that
   may end them (authentications.hold_challenges, end_challenges; a call's claim,
   mfa/calls.py); a fraud report takes all of the person's, lowest id first;
2. the person (lock_person);
3. the phone number (lock_number);
4. the sign-in;
5. the telephony budget (lock_budget): one lock for the whole service, taken last, just
   before the day's calls and texts are counted (mfa/spend.py). Every text and call (change
   notices included) waits for it in turn, so it is held only while counting and inserting.

tests/test_lock_order.py races a call's webhooks against the other requests.

PostgreSQL: a row lock on the person (`SELECT ... FOR UPDATE`) and a transaction
advisory lock on the number (numbers are not rows: any person may text any
number, and on the budget's fixed key). SQLite has no row locks but serialises writers: a no-op write takes the
database's write lock at once, before the counts are read (a later write would
take it only after reading, when another writer may already have counted).
"""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import User
from mfa.services import Services


def is_sqlite(db: Session) -> bool:
    return db.get_bind().dialect.name == "sqlite"


def lock_person(db: Session, user_id: str) -> None:
    """Serialise the person's counted actions (texts and calls, app passwords) until commit."""
    if is_sqlite(db):
        db.execute(update(User).where(User.id == user_id).values(role=User.role)
                   .execution_options(synchronize_session=False))
    else:
        db.execute(select(User.id).where(User.id == user_id).with_for_update())


def lock_number(db: Session, svc: Services, number: str) -> None:
    """Serialise sends to one phone number across people, until commit (PostgreSQL)."""
    if is_sqlite(db):
        return  # the person's lock already holds SQLite's single write lock
    db.execute(select(func.pg_advisory_xact_lock(number_key(svc, number))))


# The telephony budget's advisory-lock key: any fixed 64-bit number no keyed hash is likely to be.
BUDGET_KEY = 0x4D46415F42554447  # "MFA_BUDG"


def lock_budget(db: Session) -> None:
    """Serialise the counting of the whole service's calls and texts, until commit (PostgreSQL).

    Taken last (see the order above). SQLite: a write that changes no row takes the database's
    single write lock now, before the count, for a caller that has taken no other lock.
    """
    _service_wide(db, BUDGET_KEY)


def _service_wide(db: Session, key: int) -> None:
    """One transaction at a time holds `key`, until commit: a PostgreSQL advisory lock; on SQLite the
    database's single write lock, taken now by a write that changes no row."""
    if is_sqlite(db):
        db.execute(update(User).where(User.id == "").values(role=User.role)
                   .execution_options(synchronize_session=False))
        return
    db.execute(select(func.pg_advisory_xact_lock(key)))


ENTRA_KEYS_KEY = 0x4D46415F4541554B  # "MFA_EAUK": our Entra signing keys


def lock_entra_keys(db: Session) -> None:
    """Serialise making the first Entra signing key, so twenty first requests make one (PostgreSQL;
    SQLite's single writer does it already once a write begins, as lock_budget says)."""
    _service_wide(db, ENTRA_KEYS_KEY)


def number_key(svc: Services, number: str) -> int:
    """The number's advisory-lock key: its keyed hash as a signed 64-bit integer (what PostgreSQL takes)."""
    return int.from_bytes(bytes.fromhex(svc.vault.keyed_hash(number))[:8], "big", signed=True)
