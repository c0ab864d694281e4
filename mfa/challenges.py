"""Starting a challenge (text or call) for a sign-in, with the spacing rules that protect phones.

Never a database transaction or a lock across a call to the provider. A send is three steps,
run by `send` with a `Transactions` runner (mfa/unit_of_work.py) that commits each step:

1. reserve (one short transaction): refuse a number calls and texts may not go to
   (mfa/destinations.py); lock the person, the number, the sign-in, the telephony budget (in
   that order, see mfa/locks.py); check the budget, spacing, the hourly caps and the
   per-number spend controls (mfa/spend.py); insert the challenge in status
   "sending" (a text's code hash already set), its SendRecord and the sign-in's send counter.
   Committed, so the row exists before the provider can call back, and the caps count it.
2. deliver: the provider call, with no transaction open.
3. record (a second short transaction): the provider's SID, "sending" -> "pending" (a
   compare-and-set: a webhook may have adopted the call already), the older challenges
   superseded, the sign-in pending, the audit row. Their calls are ended after the commit.

If the provider certainly received nothing (a refusal, or no connection), the challenge is
marked "failed" and the send is given back to the caps. If it may have received the request
(DeliveryUnknown), the challenge becomes "unknown" and the sign-in pending anyway: a code that
does arrive can be typed, and a call that does ring is adopted by its first webhook (calls.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from models import Authentication, Challenge, Method, PushDevice, SendRecord
from models.base import new_id
from models.states import SUPERSEDED, AuthStatus, ChallengeStatus, Reason
from mfa import audit, destinations, limits, push_approvals, spend, unheard
from mfa.authentications import can_continue, get, hold_challenges, set_status
from mfa.compare_and_set import RowGone, compare_and_set, remember
from mfa.calls import end_calls
from mfa.errors import AccountLocked, NotPending, ProviderUnavailable, RateLimited, Unprocessable, whole_seconds
from mfa.locks import lock_number, lock_person
from mfa.method_types import method_type
from mfa.methods import owned_verified_method
from mfa.queries import on_do_not_call_list
from mfa.services import Services
from mfa.telephony import DeliveryUnknown, TelephonyRejected
from mfa.unit_of_work import Transactions
from mfa.vault import phone_lookup_matches

@dataclass
class Reservation:
    """What the reserve step committed, and what the provider call needs."""

    challenge: Challenge
    auth: Authentication
    method: Method
    number: str
    code: str | None  # a text's code: only its keyed hash is stored
    send_record: SendRecord
    sent_before: datetime | None  # the sign-in's last send before this one, restored if nothing went out
    source_ip: str | None


def start_challenge(tx: Transactions, svc: Services, auth_id: object, method_id: object,
                    source_ip: str | None) -> Challenge:
    def reserve_step(db: Session) -> Reservation | PushStart:
        auth = get(db, svc, auth_id)
        if not can_continue(auth, svc.clock.now()):
            raise NotPending(f"This sign-in is not waiting for a second factor ({auth.status}).")
        method = _method_to_challenge(db, auth, method_id)
        if method_type(method).approved_on_device:
            return _start_push(db, svc, auth, method, source_ip)
        if auth.registering:
            raise NotPending(f"This sign-in is not waiting for a second factor ({auth.status}).")
        if not method_type(method).issues_challenge:
            raise Unprocessable(
                "Authenticator-app codes need no challenge: send the code to /checks.",
                code="no_challenge_needed",
            )
        return reserve(db, svc, auth, method, "sign_in", source_ip)

    started = tx(reserve_step)
    if isinstance(started, PushStart):  # nothing to reserve: the request waits for the phone
        end_calls(svc, started.to_end)
        push_approvals.deliver(tx, svc, started.delivery)
        return started.challenge
    return _send_reserved(tx, svc, started)


@dataclass
class PushStart:
    challenge: Challenge
    delivery: push_approvals.Delivery
    to_end: list[str]  # replaced calls, hung up after the commit


def _method_to_challenge(db: Session, auth: Authentication, method_id: object) -> Method:
    """A verified method; while registering, only the phone app this sign-in (or change) is setting up:
    its first push proves it."""
    if not auth.registering:
        return owned_verified_method(auth.user, method_id)
    method = next((m for m in auth.user.methods if m.id == method_id and not m.is_verified), None)
    if method is None or not method_type(method).approved_on_device or db.scalar(select(PushDevice.id).where(
            PushDevice.method_id == method.id, PushDevice.authentication_id == auth.id)) is None:
        raise NotPending("Registration is under way: verify the new method first.")
    return method


def _start_push(db: Session, svc: Services, auth: Authentication, method: Method, source_ip: str | None) -> PushStart:
    """One transaction (no provider call): the sign-in's challenges, the person, the sign-in, in that order."""
    hold_challenges(db, auth)
    lock_person(db, auth.user_id)
    _lock(db, auth)
    db.refresh(auth.user, ["locked_until", "fraud_blocked_at"])
    if auth.user.is_locked(svc.clock.now()):
        raise AccountLocked()
    challenge, delivery = push_approvals.new_request(db, svc, auth, method)
    to_end = _supersede(db, svc, auth, challenge.id)
    set_status(db, svc, auth, AuthStatus.PENDING)
    audit.record(db, svc.clock, "challenge_started", "pending", user=auth.user, method=method.label,
                 method_type=method.type, source_ip=source_ip, detail=f"type={method.type} purpose={challenge.purpose}")
    return PushStart(challenge, delivery, to_end)


def send(tx: Transactions, svc: Services, reserve_step: Callable[[Session], Reservation],
         after_sending: Callable[[Session, Reservation], None] | None = None) -> Challenge:
    """Reserve, deliver, record: see the module docstring.

    `after_sending` runs in the record transaction once the text or call went out (or may
    have): what a use case keeps only then, e.g. a registration's call language.
    """
    return _send_reserved(tx, svc, tx(reserve_step), after_sending)


def _send_reserved(tx: Transactions, svc: Services, r: Reservation,
                   after_sending: Callable[[Session, Reservation], None] | None = None) -> Challenge:
    try:
        sid = _deliver(svc, r)
    except TelephonyRejected as refusal:
        reason = refusal.code  # the lambda must not outlive the except block's name
        tx(lambda db: _fail(db, svc, r, reason))
        raise
    except DeliveryUnknown as unsure:
        end_calls(svc, tx(lambda db: _record(db, svc, r, None, after_sending)))
        unsure.challenge = r.challenge  # pages show the code form anyway: it may arrive
        if r.challenge.number_match:  # a call that does ring asks for it: the screen must show it
            unsure.extra["number_match"] = r.challenge.number_match
        raise
    except ProviderUnavailable:
        tx(lambda db: _fail(db, svc, r, Reason.PROVIDER_UNAVAILABLE))
        raise
    end_calls(svc, tx(lambda db: _record(db, svc, r, sid, after_sending)))
    if r.challenge.status == ChallengeStatus.REPLACED:  # only when requests race: the newest one stands
        raise NotPending("A newer request for a code or call replaced this one.")
    return r.challenge


def reserve(db: Session, svc: Services, auth: Authentication, method: Method, purpose: str,
            source_ip: str | None) -> Reservation:
    """Step 1: the checks and the counted, committed challenge in status "sending"."""
    mtype = method_type(method)  # refuses a type this server does not offer
    ttl = mtype.challenge_ttl
    if ttl is None:
        raise Unprocessable(f"Verification by {mtype.label.lower()} needs no challenge.", code="no_challenge_needed")
    assert method.phone_encrypted is not None  # texts and calls go to phone methods only
    number = svc.vault.decrypt(method.phone_encrypted)
    _check_destination(db, svc, auth, method, number)  # before anything is counted or locked
    lock_person(db, auth.user_id)  # before counting: see mfa/locks.py
    lock_number(db, svc, number)
    _lock(db, auth)
    db.refresh(auth.user, ["locked_until", "fraud_blocked_at"])
    if auth.user.is_locked(svc.clock.now()):
        raise AccountLocked()
    sent_today = spend.check_budget(db, svc, auth.user, method)  # takes the last lock: the service's budget
    _check_spacing(db, svc, auth)
    _check_caps(db, svc, auth, method, number)
    range_lookup = spend.check_number(db, svc, auth.user, method, number)
    if mtype.respects_do_not_call and on_do_not_call_list(db, svc.vault, number):
        raise Unprocessable(
            "Whoever answers this number asked us not to call it again. Choose another method, "
            "or prove the number is yours with a text message.", code="do_not_call")
    now = svc.clock.now()
    challenge = Challenge(
        id=new_id(), authentication_id=auth.id, authentication=auth, method=method, type=method.type, purpose=purpose,
        status=ChallengeStatus.SENDING, attempts=0, sends=1, created_at=now, last_sent_at=now,
        expires_at=min(now + ttl, auth.expires_at),
    )
    code = mtype.new_challenge(svc, challenge)
    db.add(challenge)
    record = SendRecord(at=now, user_id=auth.user_id, phone_lookup=svc.vault.keyed_hash(number), type=method.type,
                        challenge_id=challenge.id, range_lookup=range_lookup)
    db.add(record)
    spend.counted(db, svc, sent_today)
    sent_before = auth.last_sent_at
    _count_send(db, auth, now)
    db.flush()
    return Reservation(challenge, auth, method, number, code, record, sent_before, source_ip)


def _deliver(svc: Services, r: Reservation) -> str:
    """Step 2: the provider call (no transaction is open here)."""
    return method_type(r.method).deliver(svc.telephony, r.number, r.challenge, r.code, r.auth.user.language)


def _record(db: Session, svc: Services, r: Reservation, sid: str | None,
            after_sending: Callable[[Session, Reservation], None] | None) -> list[str]:
    """Step 3: the text or call went out (sid), or may have (None). Returns calls to end."""
    challenge, auth = r.challenge, r.auth
    status = ChallengeStatus.PENDING if sid else ChallengeStatus.UNKNOWN
    # A loss: a webhook got there first (it adopted the call), or something newer replaced this one.
    try:
        compare_and_set(db, challenge, where=[Challenge.status == ChallengeStatus.SENDING],
                        status=status, provider_sid=sid)
    except RowGone:  # a newer registration of the same person removed its unverified method
        remember(challenge, status=ChallengeStatus.REPLACED, reason=Reason.REPLACED)
    if challenge.status not in (ChallengeStatus.PENDING, ChallengeStatus.UNKNOWN):
        # Replaced meanwhile, or already finished by its webhooks: leave it as it is.
        replaced_call = method_type(challenge).ends_by_hanging_up and challenge.status == ChallengeStatus.REPLACED
        if challenge.status != ChallengeStatus.REPLACED:  # a busy line can end it first: it did start
            _started(db, svc, r, sid)
        return [sid] if sid and replaced_call else []
    to_end = _supersede(db, svc, auth, challenge.id)
    set_status(db, svc, auth, AuthStatus.PENDING)
    if after_sending is not None:
        after_sending(db, r)
    _started(db, svc, r, sid)
    return to_end


def _started(db: Session, svc: Services, r: Reservation, sid: str | None) -> None:
    audit.record(db, svc.clock, "challenge_started", "pending" if sid else "unknown", user=r.auth.user,
                 method=r.method.label, method_type=r.method.type, source_ip=r.source_ip,
                 detail=f"type={r.method.type} purpose={r.challenge.purpose}")


def _fail(db: Session, svc: Services, r: Reservation, reason: str) -> None:
    """Nothing went out: the challenge failed, and the send no longer counts against any limit."""
    try:
        if not compare_and_set(db, r.challenge, where=[Challenge.status == ChallengeStatus.SENDING],
                               status=ChallengeStatus.FAILED, reason=reason):
            return
    except RowGone:  # removed with its method by a newer registration: nothing left to give back
        return
    db.execute(delete(SendRecord).where(SendRecord.id == r.send_record.id))
    db.execute(
        update(Authentication)
        .where(Authentication.id == r.auth.id, Authentication.sends > 0)
        .values(sends=Authentication.sends - 1)
        .execution_options(synchronize_session=False)
    )
    db.execute(  # only if no later send moved it meanwhile
        update(Authentication)
        .where(Authentication.id == r.auth.id, Authentication.last_sent_at == r.challenge.last_sent_at)
        .values(last_sent_at=r.sent_before)
        .execution_options(synchronize_session=False)
    )
    db.refresh(r.auth, ["sends", "last_sent_at"])
    audit.record(db, svc.clock, "challenge_not_sent", "failed", user=r.auth.user, method=r.method.label,
                 method_type=r.method.type, reason=reason, source_ip=r.source_ip, detail=f"type={r.method.type}")


def _check_destination(db: Session, svc: Services, auth: Authentication, method: Method, number: str) -> None:
    """Calls and texts only where TELEPHONY_ALLOWED_COUNTRIES allows, whenever the phone was registered."""
    try:
        destinations.check_number(svc, number)
    except destinations.DestinationNotAllowed:
        audit.record(db, svc.clock, "challenge_refused", "refused", user=auth.user, method=method.label,
                     method_type=method.type, reason=destinations.DestinationNotAllowed.code,
                     detail="the number is outside TELEPHONY_ALLOWED_COUNTRIES or in a high-cost range")
        raise


def _lock(db: Session, auth: Authentication) -> None:
    """Serialise challenge starts for one sign-in (row lock on PostgreSQL; after the person's)."""
    db.execute(select(Authentication.id).where(Authentication.id == auth.id).with_for_update())


def _check_spacing(db: Session, svc: Services, auth: Authentication) -> None:
    db.refresh(auth)  # read the counters after taking the lock
    now = svc.clock.now()
    max_sends, resend_after = svc.limits.number(limits.SENDS_PER_SIGN_IN), svc.limits.window(limits.RESEND_WAIT)
    if auth.sends >= max_sends:
        raise RateLimited(
            (auth.expires_at - now).total_seconds(),
            f"No more than {max_sends} codes or calls per sign-in. Start signing in again.",
        )
    if auth.last_sent_at and now - auth.last_sent_at < resend_after:
        wait = whole_seconds((auth.last_sent_at + resend_after - now).total_seconds())
        raise RateLimited(wait, f"Wait {wait} second{'' if wait == 1 else 's'} before asking for another code or call.")


def _check_caps(db: Session, svc: Services, auth: Authentication, method: Method, number: str) -> None:
    """Caps across sign-ins: per person, and per number (protects people who are not users).

    Counted under the person's and the number's locks (see reserve), so they hold under races.
    Texts and calls only: change notices count toward the day's budget alone (mfa/spend.py).
    """
    window = svc.limits.window(limits.SENDS_PER_PERSON)
    since = svc.clock.now() - window
    per_user = db.scalar(select(func.count()).select_from(SendRecord).where(
        SendRecord.user_id == auth.user_id, SendRecord.type.in_(spend.TELEPHONY), SendRecord.at >= since)) or 0
    since = svc.clock.now() - svc.limits.window(limits.SENDS_PER_NUMBER)
    per_number = db.scalar(select(func.count()).select_from(SendRecord).where(
        phone_lookup_matches(SendRecord.phone_lookup, svc.vault, number), SendRecord.type.in_(spend.TELEPHONY),
        SendRecord.at >= since)) or 0
    if (per_user >= svc.limits.number(limits.SENDS_PER_PERSON)
            or per_number >= svc.limits.number(limits.SENDS_PER_NUMBER)):
        audit.record(db, svc.clock, "challenge_refused", "rate_limited", user=auth.user, method=method.label,
                     method_type=method.type, reason="hourly_cap",
                     detail=f"user={per_user} number={per_number} in the last hour")
        raise RateLimited(window.total_seconds(),
                          "Too many texts and calls in the last hour. Try again later or use the authenticator app.")


def _count_send(db: Session, auth: Authentication, now: datetime) -> None:
    db.execute(
        update(Authentication)
        .where(Authentication.id == auth.id)
        .values(sends=Authentication.sends + 1, last_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    remember(auth, sends=auth.sends + 1, last_sent_at=now)  # read under the lock (_check_spacing)


def _supersede(db: Session, svc: Services, auth: Authentication, newest_id: str) -> list[str]:
    """Mark the sign-in's older challenges replaced; returns the calls that must now be ended.
    (An older one Twilio never reported on is why many ask again: mfa/unheard.py.)"""
    older = db.scalars(
        select(Challenge).where(Challenge.authentication_id == auth.id, Challenge.id != newest_id,
                                Challenge.status.in_(SUPERSEDED))
    ).all()
    if not older:
        return []
    db.execute(
        update(Challenge)
        .where(Challenge.id.in_([c.id for c in older]), Challenge.status.in_(SUPERSEDED))
        .values(status=ChallengeStatus.REPLACED, reason=Reason.REPLACED)
        .execution_options(synchronize_session=False)
    )
    unheard.note_unheard(db, svc.clock.now(), [c for c in older if c.status == ChallengeStatus.PENDING])
    return [c.provider_sid for c in older if method_type(c).ends_by_hanging_up and c.provider_sid]
