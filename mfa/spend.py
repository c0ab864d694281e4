"""Spend controls on calls and texts (toll fraud, SMS pumping): what each send may cost the service.

Checked in the reserve step of every text and call (mfa/challenges.py), under the locks
of mfa/locks.py, the telephony budget's last, so each count holds when requests race:
- the daily budget of the whole service (TELEPHONY_DAILY_BUDGET: every text, call and change
  notice since 00:00 UTC). When it is spent, calls and texts stop until midnight, only app
  methods are offered (`offered`), one ERROR line is logged and one audit event written that day;
- a daily cap per number (TELEPHONY_NUMBER_DAILY_CAP), in any 24 hours;
- no more calls to a number that did not answer LIMIT_UNANSWERED_CALLS calls in 24 hours
  (texts still go);
- a burst of new numbers in one number range (all but the last three digits) in an hour is
  slowed; numbers already texted or called in that hour keep working.
Where a number may be called at all is mfa/destinations.py. docs/toll-fraud.md is the operators' account.
"""
from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import AuditEvent, Method, SendRecord, User
from mfa import audit, limits
from mfa.errors import RateLimited
from mfa.locks import lock_budget
from mfa.method_types import method_type, phone_deliveries
from mfa.services import Services
from mfa.vault import phone_lookup_matches

log = logging.getLogger("mfa.spend")

# The send records of texts and calls (not change notices, which count toward the budget only).
TELEPHONY = tuple(t.name for t in phone_deliveries())
UNANSWERED = "unanswered"  # SendRecord.outcome of a call nobody answered (mfa/calls.py)
BUDGET_SPENT = "telephony_budget_spent"  # the audit event, once a day
RANGE_DIGITS = 3  # a number range: the E.164 number without its last three digits
PAUSED = ("Calls and texts are paused for today. Use the authenticator app or the mobile app, "
          "or a recovery code, to sign in.")


def check_budget(db: Session, svc: Services, user: User | None = None, method: Method | None = None) -> int:
    """Take the budget's lock and refuse (429) when the day's calls and texts are spent; else
    the number sent today, for `counted` once the send's SendRecord is added."""
    lock_budget(db)
    now = svc.clock.now()
    budget = svc.limits.number(limits.TELEPHONY_BUDGET)
    used = sent_today(db, now)
    if used >= budget:
        _announce_spent(db, svc, used, budget)
        audit.record(db, svc.clock, "challenge_refused", "rate_limited", user=user,
                     method=method.label if method else None, method_type=method.type if method else None,
                     reason="telephony_budget", detail=f"{used} calls and texts today, budget {budget}")
        _saw(db, now, budget, True)
        raise RateLimited((next_midnight(now) - now).total_seconds(), PAUSED)
    return used


def counted(db: Session, svc: Services, used: int) -> None:
    """A send passed every check and its SendRecord is added: if it spends the budget, the day's
    ERROR line and audit event are written now (with the send, under the budget's lock)."""
    budget = svc.limits.number(limits.TELEPHONY_BUDGET)
    if used + 1 >= budget:
        _announce_spent(db, svc, used + 1, budget)
        _saw(db, svc.clock.now(), budget, True)  # a send the provider refuses gives its place back


def check_number(db: Session, svc: Services, user: User, method: Method, number: str) -> str:
    """The per-number rules, after check_budget (under its lock). Returns the number's range
    lookup for its SendRecord."""
    now = svc.clock.now()
    _check_day(db, svc, user, method, number, now)
    if method_type(method).ends_by_hanging_up:  # a call: not to a number that keeps not answering
        _check_unanswered(db, svc, user, method, number, now)
    range_lookup = svc.vault.keyed_hash(number_range(number))
    _check_range(db, svc, user, method, number, now)
    return range_lookup


def mark_unanswered(db: Session, challenge_id: str) -> None:
    """The call of this challenge rang out unanswered: it counts toward LIMIT_UNANSWERED_CALLS."""
    db.execute(update(SendRecord).where(SendRecord.challenge_id == challenge_id)
               .values(outcome=UNANSWERED).execution_options(synchronize_session=False))


def budget_remaining(db: Session, svc: Services) -> int:
    """Calls and texts left today (the gauge mfa_telephony_budget_remaining)."""
    return max(0, svc.limits.number(limits.TELEPHONY_BUDGET) - sent_today(db, svc.clock.now()))


def telephony_paused(db: Session, svc: Services) -> bool:
    """Whether the day's budget is spent, as this worker last saw it (at most SEEN_FOR old, and
    never from another UTC day): the methods offered need not count the day's sends on every
    poll of a sign-in. A stale answer offers a text the send step then refuses, or leaves one
    out for a few seconds; the send step itself always counts, under the budget's lock."""
    now, budget, engine = svc.clock.now(), svc.limits.number(limits.TELEPHONY_BUDGET), db.get_bind()
    with _seen_lock:
        seen = _seen.get(engine)
    if seen is not None and seen[1] == budget and midnight(seen[0]) == midnight(now) \
            and timedelta(0) <= now - seen[0] < SEEN_FOR:
        return seen[2]
    paused = sent_today(db, now) >= budget
    _saw(db, now, budget, paused)
    return paused


# What each worker last saw of the budget, per database: (when, the budget then, spent?).
SEEN_FOR = timedelta(seconds=10)
_seen: weakref.WeakKeyDictionary[object, tuple[datetime, int, bool]] = weakref.WeakKeyDictionary()
_seen_lock = threading.Lock()


def _saw(db: Session, now: datetime, budget: int, paused: bool) -> None:
    with _seen_lock:
        _seen[db.get_bind()] = (now, budget, paused)


def offered(db: Session, svc: Services, methods: Sequence[Method]) -> list[Method]:
    """`methods` less texts and calls while the day's budget is spent (one count, and only
    when there is a phone among them)."""
    if not any(m.type in TELEPHONY for m in methods) or not telephony_paused(db, svc):
        return list(methods)
    return [m for m in methods if m.type not in TELEPHONY]


def sent_today(db: Session, now: datetime) -> int:
    return db.scalar(select(func.count()).select_from(SendRecord).where(SendRecord.at >= midnight(now))) or 0


def midnight(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def next_midnight(now: datetime) -> datetime:
    return midnight(now) + timedelta(days=1)


def number_range(e164: str) -> str:
    return e164[:-RANGE_DIGITS]


def _announce_spent(db: Session, svc: Services, used: int, budget: int) -> None:
    """Once a day, whichever worker or instance gets there first (checked under the budget's lock)."""
    now = svc.clock.now()
    if db.scalar(select(AuditEvent.id).where(AuditEvent.event == BUDGET_SPENT,
                                             AuditEvent.at >= midnight(now)).limit(1)) is not None:
        return
    audit.record(db, svc.clock, BUDGET_SPENT, "paused", reason="telephony_budget",
                 detail=f"{used} calls and texts today reached TELEPHONY_DAILY_BUDGET={budget}: "
                        "calls and texts are off until 00:00 UTC, only app methods are offered")
    log.error("Telephony budget spent: %d calls and texts today reached TELEPHONY_DAILY_BUDGET=%d. Calls and texts "
              "are off until 00:00 UTC; only app methods are offered. See docs/toll-fraud.md.", used, budget)


def _check_day(db: Session, svc: Services, user: User, method: Method, number: str, now: datetime) -> None:
    cap, window = svc.limits.number(limits.SENDS_PER_NUMBER_DAY), svc.limits.window(limits.SENDS_PER_NUMBER_DAY)
    sent = db.scalars(select(SendRecord.at).where(
        phone_lookup_matches(SendRecord.phone_lookup, svc.vault, number), SendRecord.type.in_(TELEPHONY),
        SendRecord.at > now - window).order_by(SendRecord.at)).all()
    if len(sent) >= cap:
        _refuse(db, svc, user, method, "number_daily_cap", f"{len(sent)} texts and calls to it in 24 hours",
                sent[len(sent) - cap] + window - now,
                "Too many texts and calls to this number today. Try again later, or use the authenticator app.")


def _check_unanswered(db: Session, svc: Services, user: User, method: Method, number: str, now: datetime) -> None:
    cap = svc.limits.number(limits.UNANSWERED_CALLS_PER_NUMBER)
    window = svc.limits.window(limits.UNANSWERED_CALLS_PER_NUMBER)
    unanswered = db.scalars(select(SendRecord.at).where(
        phone_lookup_matches(SendRecord.phone_lookup, svc.vault, number), SendRecord.outcome == UNANSWERED,
        SendRecord.at > now - window).order_by(SendRecord.at)).all()
    if len(unanswered) >= cap:
        _refuse(db, svc, user, method, "unanswered_calls", f"{len(unanswered)} unanswered calls in 24 hours",
                unanswered[len(unanswered) - cap] + window - now,
                f"Nobody answered the last {cap} calls to this number, so we will not call it again today. "
                "Choose a text message or the authenticator app.")


def _check_range(db: Session, svc: Services, user: User, method: Method, number: str, now: datetime) -> None:
    """A number texted or called in the window passes; a new one only while fewer than the limit
    of its range's numbers were."""
    cap, window = svc.limits.number(limits.NEW_NUMBERS_PER_RANGE), svc.limits.window(limits.NEW_NUMBERS_PER_RANGE)
    recent = (SendRecord.type.in_(TELEPHONY), SendRecord.at > now - window)
    if db.scalar(select(SendRecord.id).where(
            phone_lookup_matches(SendRecord.phone_lookup, svc.vault, number), *recent).limit(1)) is not None:
        return
    latest = db.scalars(select(func.max(SendRecord.at)).where(
        SendRecord.range_lookup.in_(svc.vault.keyed_hashes(number_range(number))), *recent)
        .group_by(SendRecord.phone_lookup)).all()
    if len(latest) >= cap:
        _refuse(db, svc, user, method, "number_range_burst", f"{len(latest)} numbers of its range in the last hour",
                sorted(latest)[len(latest) - cap] + window - now,
                "Too many new numbers like this one were texted or called in the last hour. Try again later, "
                "or use the authenticator app.")


def _refuse(db: Session, svc: Services, user: User, method: Method, reason: str, detail: str,
            wait: timedelta, message: str) -> None:
    audit.record(db, svc.clock, "challenge_refused", "rate_limited", user=user, method=method.label,
                 method_type=method.type, reason=reason, detail=detail)
    raise RateLimited(wait.total_seconds(), message)
