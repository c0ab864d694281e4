"""Retention: what `flask --app app prune` deletes, and what it must keep (docs/audit.md).

Everything goes after AUDIT_RETENTION_DAYS: audit events, sign-ins that ended (or lapsed: an open
one whose expiry passed) before the cutoff, with their challenges (and the Entra requests they
answered), and send records. Kept whatever their age:
- sign-ins still live: open and not expired, or expired less than the retention period ago (an
  abandoned prompt goes once it has been dead that long: its address and challenges with it);
- each person's latest answered push requests, which the push pause reads however old they are
  (mfa/push_approvals.py);
- send records inside the longest limit window (caps per person, per number, the day's budget);
- audit events the rules read back (the recovery-code cool-off, change notices, the budget's
  once-a-day event): all inside a day, and the retention period is at least one day.
Lockouts, fraud blocks and do-not-call entries live on their own rows (users, do_not_call),
which prune never touches.

Rows go in batches of BATCH, each batch its own short transaction, so no lock is held for long.
On PostgreSQL each batch takes its rows FOR UPDATE SKIP LOCKED: two prunes at once split the
work between them instead of waiting on (or deadlocking with) each other, and each counts only
the rows it deleted itself. Batches walk the primary key (keyset), so each is an index range
scan, and the push answers to keep are ranked once per run, not once per batch or per row.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from models import AuditEvent, Authentication, Challenge, EntraRequest, SendRecord
from mfa import limits
from mfa.method_types import PushApp
from mfa.recovery_codes import BACKUP_COOL_OFF
from mfa.services import Services
from mfa.unit_of_work import Transactions, rows_changed

BATCH = 1000
DEFAULT_DAYS = 90
MAX_DAYS = 3650
# The longest any rule looks back over audit events (mfa/recovery_codes.py; change notices
# look back an hour, the budget's event to midnight).
AUDIT_READ_BACK = max(BACKUP_COOL_OFF, timedelta(days=1))


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these go."""

    audit_events: datetime
    sign_ins: datetime
    send_records: datetime


@dataclass(frozen=True)
class Pruned:
    """How many rows went (or would go, in a dry run)."""

    cutoffs: Cutoffs
    audit_events: int = 0
    sign_ins: int = 0
    challenges: int = 0
    send_records: int = 0


def cutoffs(svc: Services, retention_days: int) -> Cutoffs:
    now, kept = svc.clock.now(), timedelta(days=retention_days)
    longest_limit = max(svc.limits.window(limit.name) for limit in limits.CATALOGUE)
    return Cutoffs(audit_events=now - max(kept, AUDIT_READ_BACK), sign_ins=now - kept,
                   send_records=now - max(kept, longest_limit))


def prune(steps: Transactions, svc: Services, retention_days: int, batch: int = BATCH) -> Pruned:
    """Delete what retention lets go, one committed batch at a time."""
    cut = cutoffs(svc, retention_days)
    events = _in_batches(steps, batch, lambda db, after: _delete_some(db, AuditEvent.id, after,
                                                                       [AuditEvent.at < cut.audit_events], batch))
    sends = _in_batches(steps, batch, lambda db, after: _delete_some(db, SendRecord.id, after,
                                                                      [SendRecord.at < cut.send_records], batch))
    # Ranked once: the set only shrinks while we run (a newer answer pushes older ones out), so keeping
    # what it names is never wrong. At most LIMIT_PUSH_DENIALS ids per person, and only of old sign-ins.
    kept = steps(lambda db: _kept_push_answers(db, svc, cut.sign_ins))
    sign_ins = challenges = 0
    after: str | None = None
    while True:
        chosen, after, deleted, its_challenges = steps(
            partial(_delete_sign_ins, cutoff=cut.sign_ins, kept=kept, after=after, batch=batch))
        sign_ins, challenges = sign_ins + deleted, challenges + its_challenges
        if chosen < batch:
            break
    return Pruned(cut, events, sign_ins, challenges, sends)


def would_prune(db: Session, svc: Services, retention_days: int) -> Pruned:
    """What prune would delete now (`--dry-run`)."""
    cut = cutoffs(svc, retention_days)
    ended = prunable_sign_ins(svc, cut.sign_ins)
    return Pruned(
        cut,
        audit_events=_count(db, select(AuditEvent.id).where(AuditEvent.at < cut.audit_events)),
        sign_ins=_count(db, ended),
        challenges=_count(db, select(Challenge.id).where(Challenge.authentication_id.in_(ended))),
        send_records=_count(db, select(SendRecord.id).where(SendRecord.at < cut.send_records)),
    )


def prunable_sign_ins(svc: Services, cutoff: datetime) -> Select[Any]:
    """The sign-ins prune would delete, as one query: the push answers to keep are excluded by NOT
    EXISTS, which PostgreSQL runs as an anti join (one pass), not a subplan re-read for every row."""
    ranked = _ranked_push_answers(svc)
    keep = select(ranked.c.authentication_id).where(ranked.c.authentication_id == Authentication.id,
                                                    ranked.c.nth <= svc.limits.number(limits.PUSH_DENIALS))
    return select(Authentication.id).where(*_ended(cutoff), ~keep.exists())


def _in_batches(steps: Transactions, batch: int,
                one_batch: Callable[..., tuple[int, Any, int]]) -> int:
    """Run `one_batch` until it finds less than a full batch (rows another prune holds are its to
    delete), each batch starting after the last key the one before it saw."""
    total, after = 0, None
    while True:
        chosen, after, deleted = steps(partial(one_batch, after=after))
        total += deleted
        if chosen < batch:
            return total


def _delete_some(db: Session, id_column: InstrumentedAttribute[Any], after: Any, where: list[ColumnElement[bool]],
                 batch: int) -> tuple[int, Any, int]:
    """Up to `batch` rows of one table, in id order after `after`: (rows chosen, last id, rows deleted)."""
    from_here = [id_column > after] if after is not None else []
    ids = db.scalars(select(id_column).where(*where, *from_here).order_by(id_column).limit(batch)
                     .with_for_update(skip_locked=True)).all()
    if not ids:
        return 0, after, 0
    return len(ids), ids[-1], rows_changed(db, delete(id_column.class_).where(id_column.in_(ids), *where)
                                           .execution_options(synchronize_session=False))


def _delete_sign_ins(db: Session, cutoff: datetime, kept: set[str], after: str | None,
                     batch: int) -> tuple[int, str | None, int, int]:
    """Up to `batch` ended sign-ins after `after` (by id), less the kept ones, with their challenges and
    Entra requests: (sign-ins chosen, last id seen, sign-ins deleted, challenges deleted)."""
    from_here = [Authentication.id > after] if after is not None else []
    chosen = db.scalars(select(Authentication.id).where(*_ended(cutoff), *from_here).order_by(Authentication.id)
                        .limit(batch).with_for_update(skip_locked=True, of=Authentication)).all()
    ids = [i for i in chosen if i not in kept]
    if not ids:
        return len(chosen), chosen[-1] if chosen else after, 0, 0
    no_sync = {"synchronize_session": False}
    db.execute(delete(EntraRequest).where(EntraRequest.authentication_id.in_(ids)).execution_options(**no_sync))
    challenges = rows_changed(db, delete(Challenge).where(Challenge.authentication_id.in_(ids))
                              .execution_options(**no_sync))
    sign_ins = rows_changed(db, delete(Authentication).where(Authentication.id.in_(ids), *_ended(cutoff))
                            .execution_options(**no_sync))
    return len(chosen), chosen[-1], sign_ins, challenges


def _ended(cutoff: datetime) -> list[ColumnElement[bool]]:
    """Sign-ins over before `cutoff`: finished, or open but expired (nothing reopens an expired sign-in,
    and one expired this long ago is an abandoned prompt). A retryable denial may go on until it expires."""
    return [Authentication.created_at < cutoff, Authentication.expires_at < cutoff]


def _kept_push_answers(db: Session, svc: Services, cutoff: datetime) -> set[str]:
    """The ended sign-ins holding one of their person's last PUSH_DENIALS answered push requests."""
    ranked = _ranked_push_answers(svc)
    return set(db.scalars(
        select(ranked.c.authentication_id)
        .join(Authentication, Authentication.id == ranked.c.authentication_id)
        .where(ranked.c.nth <= svc.limits.number(limits.PUSH_DENIALS), *_ended(cutoff))).all())


def _ranked_push_answers(svc: Services) -> Subquery:
    """Every answered push request, numbered from each person's latest: the pause after denials in a row
    reads the first PUSH_DENIALS, whatever their age (mfa/push_approvals.py)."""
    asked = aliased(Authentication)  # its own name: never correlated with an outer authentications
    return (
        select(Challenge.authentication_id.label("authentication_id"),
               func.row_number().over(partition_by=asked.user_id,
                                      order_by=Challenge.answered_at.desc()).label("nth"))
        .join(asked, asked.id == Challenge.authentication_id)
        .where(Challenge.type == PushApp.name, Challenge.answered_at.is_not(None))
        .subquery()
    )


def _count(db: Session, ids: Select[Any]) -> int:
    return db.scalar(select(func.count()).select_from(ids.subquery())) or 0
