"""Push approvals: a sign-in request waits for the person's phone app, which answers it signed.

The sign-in screen shows two digits; the phone must send them back to approve (number matching:
NIST SP 800-63B-4 §3.1.3.1). A tap alone approves nothing, so someone who only knows the
password cannot wear the person down with requests until they tap "Approve" (MFA fatigue);
fatigue limits cap the requests too (mfa/limits.py): PUSH_REQUESTS per person in its window and
PUSH_REQUESTS_PER_HOUR in an hour, and PUSH_DENIALS denials in a row pause them for its window.

Lock order as everywhere (mfa/locks.py): the sign-in's challenges (a claim), the person, the sign-in.
Starting one runs in challenges.start_challenge; the push itself goes out after the commit (deliver).
"""
from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models import ApiKey, Authentication, Challenge, Method, PushDevice
from models.base import is_id, new_id
from models.states import OPEN_STATUSES, AuthStatus, ChallengeStatus, Reason
from mfa import audit, fraud_reports, limits
from mfa.accounts import record_failure, reset_failures
from mfa.authentications import end_unanswered_push, finish, hold_challenges
from mfa.calls import claim
from mfa.compare_and_set import RowGone
from mfa.checks import REGISTERED_MEANWHILE
from mfa.errors import AccountLocked, BadRequest, Conflict, NotFound, NotPending, RateLimited, Unprocessable
from mfa.locks import lock_person
from mfa.method_types import PushApp, method_type
from mfa.methods import activate, registered_meanwhile
from mfa.push_delivery import GONE, SENT
from mfa.push_enrolment import MAX_DEVICES, TOO_MANY_DEVICES
from mfa.services import Services
from mfa.unit_of_work import Transactions

log = logging.getLogger("mfa.push")

DENIALS_IN_A_ROW = (Reason.PUSH_DENIED, Reason.NUMBER_MISMATCH)
ENDED = "This sign-in request has ended: it was answered, replaced by a newer one, or it expired."
CANCELLED_ON_SCREEN = ("This sign-in was cancelled on the sign-in screen, so there is nothing to approve. If it "
                       "was not you, choose 'This wasn't me'.")
CANCELLED = and_(Authentication.status == AuthStatus.DENIED, Authentication.reason == Reason.CANCELLED_BY_PERSON)


@dataclass(frozen=True)
class Delivery:
    """What goes to the phone once the request is committed (no network call inside a transaction)."""

    device_id: str
    subscription: dict[str, object] | None
    payload: dict[str, object]


@dataclass(frozen=True)
class PendingRequest:
    id: str
    service: str
    app: str
    created_at: datetime
    expires_at: datetime
    source_ip: str | None
    cancelled: bool = False  # Cancel was pressed on the sign-in screen: only "This wasn't me" is left


def device_of(db: Session, method: Method) -> PushDevice:
    device = db.scalar(select(PushDevice).where(PushDevice.method_id == method.id))
    if device is None or device.public_key is None:
        raise Conflict("The phone has not been set up yet: open the set-up link on it first.",
                       code="device_not_enrolled")
    return device


def new_request(db: Session, svc: Services, auth: Authentication, method: Method) -> tuple[Challenge, Delivery]:
    """Under the person's lock (the caller holds it): the fatigue limits, then the pending request."""
    device = device_of(db, method)
    _check_fatigue(db, svc, auth)
    now = svc.clock.now()
    challenge = Challenge(
        id=new_id(), authentication_id=auth.id, authentication=auth, method=method, type=method.type,
        purpose="registration" if auth.registering else "sign_in", status=ChallengeStatus.PENDING,
        attempts=0, sends=1, created_at=now, last_sent_at=now,
        expires_at=min(now + _ttl(), auth.expires_at),
    )
    method_type(method).new_challenge(svc, challenge)
    db.add(challenge)
    db.flush()
    sealed = device.subscription_encrypted
    subscription = json.loads(svc.vault.decrypt(sealed)) if sealed else None
    app = _app_name(db, svc, auth)
    payload: dict[str, object] = {
        "type": "sign_in_request", "request_id": challenge.id, "title": f"Sign-in request for {svc.service_name}",
        "service": svc.service_name, "app": app, "created_at": _iso(now),
    }
    return challenge, Delivery(device.id, subscription, payload)


def deliver(tx: Transactions, svc: Services, delivery: Delivery) -> None:
    """After the commit: tell the phone now (Web Push). Best effort: the phone also fetches its requests."""
    if delivery.subscription is None:
        return
    outcome = svc.push.send(delivery.subscription, delivery.payload)
    if outcome != SENT:
        log.info("web push to device %s: %s (the app still sees the request when it polls)",
                 delivery.device_id, outcome)
    if outcome == GONE:  # the push service dropped it (app uninstalled, permission withdrawn)
        tx(lambda db: _forget_subscription(db, delivery.device_id))


def pending_for(db: Session, svc: Services, device: PushDevice) -> list[PendingRequest]:
    now = svc.clock.now()
    rows = db.execute(
        select(Challenge, Authentication, ApiKey.name)
        .join(Authentication, Authentication.id == Challenge.authentication_id)
        .outerjoin(ApiKey, ApiKey.id == Authentication.api_key_id)
        .where(Challenge.method_id == device.method_id, Challenge.status == ChallengeStatus.PENDING,
               Challenge.expires_at > now, or_(Authentication.status.in_(OPEN_STATUSES), CANCELLED))
        .order_by(Challenge.created_at.desc())
    ).all()
    return [PendingRequest(c.id, svc.service_name, app or _own_pages(svc), c.created_at, c.expires_at, a.source_ip,
                           cancelled=not a.is_open()) for c, a, app in rows]


def approve(db: Session, svc: Services, device: PushDevice, request_id: object, number: object,
            source_ip: str | None) -> None:
    if not (isinstance(number, str) and number.isascii() and number.isdigit() and len(number) <= 4):
        raise BadRequest("'number' must be the number shown on the sign-in screen.", field="number")
    challenge = _answerable(db, svc, device, request_id)
    auth, now = challenge.authentication, svc.clock.now()
    if not auth.is_open():  # cancelled on the sign-in screen: nothing to approve, but still there to report
        raise NotPending(CANCELLED_ON_SCREEN)
    assert challenge.number_match is not None  # every push request has one
    if not hmac.compare_digest(number.encode(), challenge.number_match.encode()):
        _mismatch(db, svc, device, challenge, source_ip)
        raise Unprocessable("That number does not match the one on the sign-in screen, so the sign-in has been "
                            "denied. If you are signing in, start again.", code="number_mismatch")
    if not device.method.is_verified:
        _check_room_for_another_phone(db, auth)
    if not _claim(db, challenge, ChallengeStatus.APPROVED, ending_the_rest=Reason.VERIFIED):
        raise NotPending(ENDED)
    challenge.answered_at = now
    if registered_meanwhile(db, auth):  # a first registration cannot finish after another one
        finish(db, svc, auth, AuthStatus.DENIED, Reason.REGISTERED_MEANWHILE)
        raise NotPending(REGISTERED_MEANWHILE)
    if auth.user.failed_count:  # reset_failures writes the person: lock them before the sign-in
        lock_person(db, auth.user_id)
    if not finish(db, svc, auth, AuthStatus.APPROVED, Reason.VERIFIED, challenges_ended=True,
                  approved_with=PushApp.name):
        raise NotPending(ENDED)
    if not device.method.is_verified:
        activate(db, svc, device.method, source_ip)
    reset_failures(db, auth.user)
    device.last_used_at = now
    audit.record(db, svc.clock, "sign_in", "approved", user=auth.user, method=device.method.label,
                 method_type=PushApp.name, reason=Reason.VERIFIED, source_ip=auth.source_ip,
                 detail=f"the number on the sign-in screen typed in the phone app (device from {source_ip})")


def deny(db: Session, svc: Services, device: PushDevice, request_id: object, fraud: bool,
         source_ip: str | None) -> tuple[AuthStatus, list[str]]:
    """"Deny", or "This wasn't me" (fraud: as 0# on a call). Returns the sign-in's status and any
    calls to hang up after the commit (a fraud report ends the person's other sign-ins)."""
    challenge = _answerable(db, svc, device, request_id, fraud=fraud)
    auth, now = challenge.authentication, svc.clock.now()
    reporting = fraud and challenge.purpose != "registration"  # setting up one's own phone: no one to report
    if reporting:
        fraud_reports.hold_challenges_under_way(db, auth.user_id)  # before the person (mfa/locks.py)
        if not _claim(db, challenge, ChallengeStatus.FRAUD):
            raise NotPending(ENDED)
        challenge.answered_at = now
        device.last_used_at = now
        to_end = fraud_reports.block(db, svc, auth, device.method, '"This wasn\'t me" chosen on the phone app')
        return AuthStatus.FRAUD_REPORTED, to_end
    if not auth.is_open():  # cancelled on the sign-in screen already: the request just ends
        _claim(db, challenge, ChallengeStatus.ENDED, Reason.CANCELLED_BY_PERSON)
        return AuthStatus(auth.status), []
    if not _claim(db, challenge, ChallengeStatus.DENIED, Reason.PUSH_DENIED, ending_the_rest=Reason.PUSH_DENIED):
        raise NotPending(ENDED)
    challenge.answered_at = now
    device.last_used_at = now
    finish(db, svc, auth, AuthStatus.DENIED, Reason.PUSH_DENIED, challenges_ended=True)
    audit.record(db, svc.clock, "challenge_failed", "denied", user=auth.user, method=device.method.label,
                 method_type=PushApp.name, reason=Reason.PUSH_DENIED, source_ip=auth.source_ip,
                 detail=f"Deny chosen on the phone app (device from {source_ip})")
    _pause_if_denied_twice(db, svc, auth)
    return AuthStatus.DENIED, []


# --- helpers ---


def _ttl() -> timedelta:
    ttl = PushApp.challenge_ttl
    assert ttl is not None
    return ttl


def _answerable(db: Session, svc: Services, device: PushDevice, request_id: object,
                fraud: bool = False) -> Challenge:
    """This device's request, still waiting: NotFound for another device's (never told apart from unknown).

    `fraud` ("This wasn't me", on a sign-in's request): also when the sign-in was cancelled on its screen,
    or the person has been locked out meanwhile: whoever has the password must not be able to stop the
    owner reporting it."""
    challenge = db.get(Challenge, request_id) if is_id(request_id) else None
    if challenge is None or challenge.method_id != device.method_id:
        raise NotFound("No such sign-in request.", code="not_found")
    auth, now = challenge.authentication, svc.clock.now()
    if challenge.status == ChallengeStatus.PENDING and now >= challenge.expires_at:
        end_unanswered_push(db, svc, auth)  # says so to the sign-in too
    cancelled = auth.status == AuthStatus.DENIED and auth.reason == Reason.CANCELLED_BY_PERSON
    if challenge.status != ChallengeStatus.PENDING or now >= challenge.expires_at or not (auth.is_open() or cancelled):
        raise NotPending(ENDED)
    db.refresh(auth.user, ["locked_until", "fraud_blocked_at"])
    reporting = fraud and challenge.purpose != "registration"
    if auth.user.is_locked(now) and not (reporting and auth.user.fraud_blocked_at is None):
        raise AccountLocked()
    return challenge


def _claim(db: Session, challenge: Challenge, status: ChallengeStatus, reason: Reason | None = None, *,
           ending_the_rest: Reason | None = None) -> bool:
    """calls.claim, for a request whose method may have been removed meanwhile (then it is not pending)."""
    try:
        return claim(db, challenge, status, reason, ending_the_rest=ending_the_rest)
    except RowGone:
        return False


def _check_room_for_another_phone(db: Session, auth: Authentication) -> None:
    """The phone cap, counted again under the person's lock as the new phone is saved: two set-ups
    started side by side each passed it when they began (push_enrolment.register_push)."""
    hold_challenges(db, auth)  # the challenges before the person (mfa/locks.py)
    lock_person(db, auth.user_id)
    phones = db.scalar(select(func.count()).select_from(Method).where(
        Method.user_id == auth.user_id, Method.type == PushApp.name, Method.verified_at.is_not(None))) or 0
    if phones >= MAX_DEVICES:
        raise Unprocessable(TOO_MANY_DEVICES, code="too_many_devices")


def _mismatch(db: Session, svc: Services, device: PushDevice, challenge: Challenge, source_ip: str | None) -> None:
    """A number other than the one on the screen: whoever holds the phone may be approving a sign-in
    they cannot see. Denied at once (not retryable), audited as suspicious, counted as a failure."""
    if not _claim(db, challenge, ChallengeStatus.DENIED, Reason.NUMBER_MISMATCH,
                  ending_the_rest=Reason.NUMBER_MISMATCH):
        raise NotPending(ENDED)
    auth = challenge.authentication
    challenge.answered_at = svc.clock.now()
    device.last_used_at = challenge.answered_at
    lock_person(db, auth.user_id)  # record_failure writes the person: before the sign-in
    finish(db, svc, auth, AuthStatus.DENIED, Reason.NUMBER_MISMATCH, challenges_ended=True)
    audit.record(db, svc.clock, "number_mismatch", "suspicious", user=auth.user, method=device.method.label,
                 method_type=PushApp.name, reason=Reason.NUMBER_MISMATCH, source_ip=auth.source_ip,
                 detail=f"a number other than the one on the sign-in screen was typed in the phone app "
                        f"(device from {source_ip}); the sign-in is denied")
    log.warning("NUMBER MISMATCH on the phone app %s for %s (sign-in from %s): the sign-in is denied",
                device.method.label, auth.user.username, auth.source_ip)
    record_failure(db, svc, auth.user, auth.source_ip, via_api=auth.api_key_id is not None)
    _pause_if_denied_twice(db, svc, auth)


def _check_fatigue(db: Session, svc: Services, auth: Authentication) -> None:
    now = svc.clock.now()
    most, window = svc.limits.number(limits.PUSH_REQUESTS), svc.limits.window(limits.PUSH_REQUESTS)
    mine = [Authentication.user_id == auth.user_id, Challenge.type == PushApp.name]
    recent = db.scalars(select(Challenge.created_at)
                        .join(Authentication, Authentication.id == Challenge.authentication_id)
                        .where(*mine, Challenge.created_at > now - window)
                        .order_by(Challenge.created_at.desc()).limit(most)).all()
    if len(recent) >= most:
        wait = recent[-1] + window - now
        audit.record(db, svc.clock, "challenge_refused", "rate_limited", user=auth.user, method_type=PushApp.name,
                     reason="push_fatigue_limit", source_ip=auth.source_ip,
                     detail=f"{most} push requests in {_minutes(window)} minutes")
        raise RateLimited(wait.total_seconds(), f"We have sent {most} requests to your phone in the last "
                          f"{_minutes(window)} minutes. Choose another way to sign in, or wait "
                          f"{_in_minutes(wait)}.")
    most, window = svc.limits.number(limits.PUSH_REQUESTS_PER_HOUR), svc.limits.window(limits.PUSH_REQUESTS_PER_HOUR)
    in_the_hour = db.scalars(select(Challenge.created_at)
                             .join(Authentication, Authentication.id == Challenge.authentication_id)
                             .where(*mine, Challenge.created_at > now - window)
                             .order_by(Challenge.created_at.desc()).limit(most)).all()
    if len(in_the_hour) >= most:
        audit.record(db, svc.clock, "challenge_refused", "rate_limited", user=auth.user, method_type=PushApp.name,
                     reason="push_hourly_cap", source_ip=auth.source_ip,
                     detail=f"{most} push requests in an hour")
        raise RateLimited((in_the_hour[-1] + window - now).total_seconds(), f"We have sent {most} "
                          "requests to your phone in the last hour. Choose another way to sign in, or try again "
                          f"in {_in_minutes(in_the_hour[-1] + window - now)}.")
    paused_until = _paused_until(db, svc, auth.user_id)
    if paused_until is not None and now < paused_until:
        raise RateLimited((paused_until - now).total_seconds(),
                          f"Requests to your phone are paused because the last "
                          f"{svc.limits.number(limits.PUSH_DENIALS)} were denied. "
                          f"Choose another way to sign in, or wait {_in_minutes(paused_until - now)}.")


def _paused_until(db: Session, svc: Services, user_id: str) -> datetime | None:
    """When the pause after PUSH_DENIALS denials in a row ends (an approval breaks the run)."""
    denials = svc.limits.number(limits.PUSH_DENIALS)
    answers = db.execute(
        select(Challenge.status, Challenge.reason, Challenge.answered_at)
        .join(Authentication, Authentication.id == Challenge.authentication_id)
        .where(Authentication.user_id == user_id, Challenge.type == PushApp.name, Challenge.answered_at.is_not(None))
        .order_by(Challenge.answered_at.desc()).limit(denials)).all()
    if len(answers) < denials or not all(a.reason in DENIALS_IN_A_ROW for a in answers):
        return None
    latest = answers[0].answered_at
    assert isinstance(latest, datetime)
    return latest + svc.limits.window(limits.PUSH_DENIALS)


def _pause_if_denied_twice(db: Session, svc: Services, auth: Authentication) -> None:
    db.flush()  # the answer just recorded counts
    if _paused_until(db, svc, auth.user_id) is not None:
        denials = svc.limits.number(limits.PUSH_DENIALS)
        audit.record(db, svc.clock, "push_paused", "suspicious", user=auth.user, method_type=PushApp.name,
                     source_ip=auth.source_ip,
                     detail=f"{denials} push requests denied in a row: none for "
                            f"{_minutes(svc.limits.window(limits.PUSH_DENIALS))} minutes")
        log.warning("PUSH PAUSED for %s: %d requests denied in a row (last sign-in from %s)",
                    auth.user.username, denials, auth.source_ip)


def _forget_subscription(db: Session, device_id: str) -> None:
    device = db.get(PushDevice, device_id)
    if device is not None:
        device.subscription_encrypted = None


def _app_name(db: Session, svc: Services, auth: Authentication) -> str:
    name = db.scalar(select(ApiKey.name).where(ApiKey.id == auth.api_key_id)) if auth.api_key_id else None
    return name or _own_pages(svc)


def _own_pages(svc: Services) -> str:
    return f"{svc.service_name} sign-in page"


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _in_minutes(span: timedelta) -> str:
    minutes = max(1, -(-int(span.total_seconds()) // 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
