"""Change notifications: a text to a person's other phones when their sign-in methods change.

NIST SP 800-63B-4 asks that people be told of changes to their authenticators (§4.6) and that a
changed phone number count as a new binding (§3.1.3.3): someone who has the password and adds
their own phone or app should not go unnoticed by the person whose account it is.

Who gets the text: the person's verified phones registered for texts, each number once, never the
phone the change is about (nor any other row with its number), and only numbers calls and texts
may go to (mfa/destinations.py). Office phones and numbers registered for calls only are not
texted: a desk phone cannot show a text (some landline services read texts aloud to whoever picks
up), and the person never agreed to texts on a call-only number. A phone that was removed is not
texted: it is often one the person no longer holds (lost, or its number passed to someone else).
A phone whose number was changed (a new phone of the same kind replaced it) is texted at its old
number, as banks do: the person proved they held it, and otherwise replacing someone's only phone
would tell nobody. The new number is never texted (whoever added it holds it).

How many: a number that already had SENDS_PER_NUMBER_DAY texts, calls or notices in its window
gets no notice, and a person notified limits.NOTICES_PER_PERSON times in the last hour gets no more
that hour; the skips are audited. Without these, one approved sign-in regenerating recovery codes
in a loop would text one phone without end and spend the whole service's telephony budget.

When: notify() runs inside the use case's transaction. It writes the audit event ("change_notice",
always, with how many phones were texted) and a SendRecord per text, so the day's telephony
budget and the per-number caps count notices like any other text. The texts themselves wait on
the session (`info`) and go out once it commits (send_after_commit hooks the application's
session factory), on a small pool of threads so that no request waits on the provider; a
rollback drops them. A text that fails is logged (masked number) and audited, never raised: the
change it reports has already happened.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from models import AuditEvent, Method, SendRecord, User
from mfa import audit, destinations, limits, spend
from mfa.method_types import AppCode, PushApp, Text, method_type, offered
from mfa.phones import mask
from mfa.services import Services
from mfa.unit_of_work import use_case
from mfa.vault import phone_lookup_matches

log = logging.getLogger("mfa.change_notices")

# What changed: the key of the text's words (ivr/sms_texts.py) and the audit event's reason.
PHONE_ADDED = "phone_added"
PHONE_CHANGED = "phone_changed"
PHONE_REMOVED = "phone_removed"
APP_ADDED = "app_added"
APP_REMOVED = "app_removed"
DEVICE_ADDED = "device_added"  # a phone set up to approve sign-ins in the phone app (push)
DEVICE_REMOVED = "device_removed"
RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
RECOVERY_CODE_USED = "recovery_code_used"
ACCESS_PASS_USED = "access_pass_used"
CHANGES = (PHONE_ADDED, PHONE_CHANGED, PHONE_REMOVED, APP_ADDED, APP_REMOVED, DEVICE_ADDED, DEVICE_REMOVED,
           RECOVERY_CODES_REGENERATED, RECOVERY_CODE_USED, ACCESS_PASS_USED)
# The changes about one phone number: their text may name its last four digits.
PHONE_CHANGES = (PHONE_ADDED, PHONE_CHANGED, PHONE_REMOVED)

SEND_TYPE = "notice"  # SendRecord.type of a change notification
EVENT = "change_notice"
PENDING_KEY = "mfa_change_notices"  # Session.info: the texts waiting for the commit
SEND_THREADS = 4  # texts going out at once per process; more wait their turn in the pool's queue
SHOWN_DIGITS = 4


@dataclass(frozen=True)
class Notice:
    """One text waiting for the commit. `to` is the full number: only the provider sees it."""

    svc: Services
    user_id: str
    to: str
    change: str
    language: str
    last_digits: str | None


def notify(db: Session, svc: Services, user: User, change: str, *, exclude_method_ids: Iterable[str] = (),
           detail: str | None = None, phone: Method | None = None, replaced_numbers: Iterable[str] = ()) -> None:
    """Text the person's other phones that `change` happened, once the transaction commits.

    `phone`: the phone added, changed to, or removed (its last four digits go into the text, and
    it is never texted); `exclude_method_ids`: other methods the change is about (never texted,
    nor any row with their numbers). `replaced_numbers`: for PHONE_CHANGED, the number the new
    phone replaced (replaced_numbers() reads it before the delete): texted too, as banks text the
    old number on a change, but never when it is the new number. `detail` goes to the audit event
    (masked text only). Call it after the change is made, in the same transaction.

    Capped: no text to a number that already had SENDS_PER_NUMBER_DAY texts, calls or notices in
    its window, and none at all once the person was notified limits.NOTICES_PER_PERSON times in the
    last hour (each skip is in the audit event's detail). Counted without a lock of their own:
    most callers hold the person's lock (recovery codes, a recovery code or pass used); a phone
    or app change racing another change of the same person may overshoot by a text or two.
    """
    if change not in CHANGES:
        raise ValueError(f"unknown change {change!r}")
    excluded_ids = set(exclude_method_ids) | ({phone.id} if phone is not None else set())
    excluded_numbers = {_number(svc, m) for m in [*user.methods, *([phone] if phone is not None else [])]
                        if m.id in excluded_ids and m.phone_encrypted is not None}
    to, skipped = _recipients(svc, user, excluded_ids, excluded_numbers)
    for number in replaced_numbers:
        _take(svc, number, f"the replaced phone {mask(number)}", to, skipped, excluded_numbers)
    now = svc.clock.now()
    to, skipped = _capped(db, svc, user, to, skipped, now)
    # The day's telephony budget (TELEPHONY_DAILY_BUDGET) counts notices and stops them too. Read
    # without its lock (mfa/spend.py takes it for challenges): two changes at once may each send
    # the budget's last text, which costs at most a text or two and never holds up a sign-in.
    left = spend.budget_remaining(db, svc) if to else 0
    if len(to) > left:
        skipped.append(f"not sent: budget ({len(to) - left})")
        to = to[:left]
    last_digits = (_number(svc, phone)[-SHOWN_DIGITS:]
                   if phone is not None and phone.phone_encrypted is not None and change in PHONE_CHANGES else None)
    for number in to:
        db.add(SendRecord(at=now, user_id=user.id, phone_lookup=svc.vault.keyed_hash(number), type=SEND_TYPE,
                          challenge_id=None))
        db.info.setdefault(PENDING_KEY, []).append(
            Notice(svc, user.id, number, change, user.language, last_digits))
    audit.record(db, svc.clock, EVENT, "sent" if to else "none", user=user, reason=change,
                 method=phone.label if phone is not None else None,
                 detail="; ".join([f"{len(to)} phone(s) notified", *skipped, *([detail] if detail else [])]))


def added(method: Method, replaced: bool) -> str | None:
    """The change a newly verified method makes: a phone added, or changed when it took the place
    of the person's phone of the same kind (a new binding); an app or a phone-app device added."""
    if not offered(method):
        return None
    if method_type(method).is_phone_delivery:
        return PHONE_CHANGED if replaced else PHONE_ADDED
    return {AppCode.name: APP_ADDED, PushApp.name: DEVICE_ADDED}.get(method.type)


def removed(method: Method) -> str | None:
    """The change removing `method` makes (None for a type this server does not offer)."""
    if not offered(method):
        return None
    if method_type(method).is_phone_delivery:
        return PHONE_REMOVED
    return {AppCode.name: APP_REMOVED, PushApp.name: DEVICE_REMOVED}.get(method.type)


def replaced_numbers(svc: Services, replaced: Iterable[Method]) -> list[str]:
    """The numbers of the replaced phones that took texts (read them before deleting the rows)."""
    return list(dict.fromkeys(_number(svc, m) for m in replaced
                              if offered(m) and m.type == Text.name and m.phone_encrypted is not None))


def _capped(db: Session, svc: Services, user: User, to: list[str], skipped: list[str],
            now: datetime) -> tuple[list[str], list[str]]:
    """Drop the numbers at their daily cap, and everyone once the person had their notices this hour."""
    if not to:
        return to, skipped
    told = db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event == EVENT, AuditEvent.user_id == user.id, AuditEvent.outcome == "sent",
        AuditEvent.at > now - svc.limits.window(limits.NOTICES_PER_PERSON))) or 0
    if told >= svc.limits.number(limits.NOTICES_PER_PERSON):
        return [], [*skipped, f"not sent: {told} notices to this person in the last hour"
                              f" ({len(to)} phone(s) passed over)"]
    cap, window = svc.limits.number(limits.SENDS_PER_NUMBER_DAY), svc.limits.window(limits.SENDS_PER_NUMBER_DAY)
    kept: list[str] = []
    for number in to:
        sends = db.scalar(select(func.count()).select_from(SendRecord).where(
            phone_lookup_matches(SendRecord.phone_lookup, svc.vault, number), SendRecord.at > now - window)) or 0
        if sends >= cap:
            skipped = [*skipped, f"{mask(number)} not texted: daily cap ({sends} texts and calls)"]
        else:
            kept.append(number)
    return kept, skipped


def _recipients(svc: Services, user: User, excluded_ids: set[str],
                excluded_numbers: set[str]) -> tuple[list[str], list[str]]:
    """The numbers to text, each once, and what was passed over and why (for the audit event)."""
    to: list[str] = []
    skipped: list[str] = []
    for method in user.verified_methods():
        # Texts go only to numbers the person registered for texts: a mobile proven either way
        # has its text row (methods.activate adds the twin); office and call-only phones have none.
        if not offered(method) or method.type != Text.name or method.phone_encrypted is None:
            continue
        if method.id in excluded_ids:
            continue
        _take(svc, _number(svc, method), method.label, to, skipped, excluded_numbers)
    return to, skipped


def _take(svc: Services, number: str, label: str, to: list[str], skipped: list[str],
          excluded_numbers: set[str]) -> None:
    """Add `number` to `to` once, unless excluded or not a destination calls and texts may go to."""
    if number in excluded_numbers or number in to:
        return
    if _refused_destination(svc, number):
        skipped.append(f"{label} not texted: destination not allowed")
        return
    to.append(number)


def _number(svc: Services, method: Method) -> str:
    assert method.phone_encrypted is not None
    return svc.vault.decrypt(method.phone_encrypted)


def _refused_destination(svc: Services, number: str) -> bool:
    """Outside TELEPHONY_ALLOWED_COUNTRIES or in a high-cost range (a number registered before the
    setting changed): not texted."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return True
    return destinations.refusal(svc, parsed) is not None


# --- after the commit ----------------------------------------------------------------------


def send_after_commit(sessions: sessionmaker[Session]) -> None:
    """Send the notices of every session `sessions` makes once it commits; drop them if it does not.

    Savepoints (begin_nested) are not use cases: only the outermost commit sends.
    """

    def _committed(session: Session) -> None:
        if session.get_nested_transaction() is not None:
            return  # a savepoint released: the transaction may still roll back
        notices: list[Notice] = session.info.pop(PENDING_KEY, [])
        for notice in notices:
            _sender.submit(sessions, notice)

    def _ended(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # rolled back or closed without a commit: nothing happened
            dropped = session.info.pop(PENDING_KEY, [])
            if dropped:
                log.info("%d change notice(s) dropped: the change was not committed", len(dropped))

    event.listen(sessions, "after_commit", _committed)
    event.listen(sessions, "after_transaction_end", _ended)


def wait_for_sends(timeout: float = 10.0) -> bool:
    """Block until every notice handed to the pool has been sent or has failed (tests, shut-down)."""
    return _sender.wait(timeout)


class _Sender:
    """A few threads per process, made at the first text (so never before a server forks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()

    def submit(self, sessions: sessionmaker[Session], notice: Notice) -> None:
        try:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="change-notice")
                future = self._pool.submit(_send, sessions, notice)
                self._pending.add(future)
            future.add_done_callback(self._done)
        except RuntimeError:  # the interpreter is shutting down: nothing more can be sent
            log.warning("change notice %s to %s not sent: shutting down", notice.change, mask(notice.to))

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self, timeout: float) -> bool:
        with self._lock:
            pending = set(self._pending)
        return not wait(pending, timeout=timeout).not_done


_sender = _Sender()


def _send(sessions: sessionmaker[Session], notice: Notice) -> None:
    """On a pool thread: the provider's own time-outs and retry budget bound how long it takes."""
    shown = mask(notice.to)
    try:
        sid = notice.svc.telephony.send_notice_sms(notice.to, notice.change, notice.language, notice.last_digits)
    except Exception as exc:  # never raised: the change it reports is done
        reason = getattr(exc, "code", None) or type(exc).__name__
        log.warning("change notice %s to %s not sent: %s", notice.change, shown, reason)
        _audit_failure(sessions, notice, shown, str(reason))
        return
    log.info("change notice %s sent to %s (%s)", notice.change, shown, sid)


def _audit_failure(sessions: sessionmaker[Session], notice: Notice, shown: str, reason: str) -> None:
    try:
        with sessions() as db, use_case(db):
            user = db.get(User, notice.user_id)
            audit.record(db, notice.svc.clock, EVENT, "failed", user=user, reason=notice.change, method=shown,
                         detail=f"the text did not go out: {reason}")
    except Exception:
        log.exception("change notice %s to %s: the failure could not be audited", notice.change, shown)
