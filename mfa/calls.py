"""A verification call, turn by turn: what each webhook means for the sign-in.

`#` approves; `0#` reports fraud and blocks the account; `9` puts the number on
the do-not-call list; silence or another key gets one more go, then denies.
Every change is a compare-and-set on the pending challenge, so a repeated or
late webhook changes nothing twice and hears the same ending again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import Session

from models import Authentication, Challenge, DoNotCall, User
from models.authentication import OPEN_STATUSES
from models.base import is_id
from mfa import audit
from mfa.accounts import reset_failures
from mfa.authentications import finish, remember
from mfa.methods import activate
from mfa.services import Services

log = logging.getLogger("mfa.calls")

# A webhook needs the challenge, its sign-in, the person and the method: one query.
WITH_CONTEXT = [joinedload(Challenge.authentication).joinedload(Authentication.user), joinedload(Challenge.method)]
MAX_REPROMPTS = 1
REPROMPTS = ("reprompt_no_input", "reprompt_wrong_key")
MACHINE_ANSWERS = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
CALL_FAILURES = {"busy": "busy", "no-answer": "no_answer", "failed": "call_failed",
                 "canceled": "canceled", "completed": "hung_up"}
# What a finished challenge says again if its webhook is repeated.
ENDINGS = {"approved": "verified", "fraud": "fraud_recorded", "do_not_call": "do_not_call",
           "no_input": "no_input_goodbye", "wrong_key": "wrong_key_goodbye"}


@dataclass(frozen=True)
class CallTurn:
    """What the caller hears next: an outcome name the call flow turns into TwiML.

    `turn` counts the prompts repeated so far; it goes into the next webhook
    URLs, so a repeated delivery of an older turn is recognised and replayed.
    """

    outcome: str
    language: str = "en-GB"
    turn: int = 0


def answered(db: Session, svc: Services, challenge_id, call_sid, answered_by) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    if answered_by in MACHINE_ANSWERS:
        _deny(db, svc, challenge, "machine_answered")
        return _turn(challenge, "hangup")
    _set_step(db, challenge, "answered")
    return _turn(challenge, "prompt")


def keys_pressed(db: Session, svc: Services, challenge_id, call_sid, digits, turn=None) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    digits = digits if isinstance(digits, str) else ""
    if digits == "#":
        return _approve(db, svc, challenge)
    if digits == "0#":
        return _report_fraud(db, svc, challenge)
    if digits in ("9", "9#"):
        return _do_not_call(db, svc, challenge)
    if digits == "":
        return _retry_or_deny(db, svc, challenge, "reprompt_no_input", "no_input", turn)
    return _retry_or_deny(db, svc, challenge, "reprompt_wrong_key", "wrong_key", turn)


def heard_nothing(db: Session, svc: Services, challenge_id, call_sid, turn=None) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    return _retry_or_deny(db, svc, challenge, "reprompt_no_input", "no_input", turn)


def status_changed(db: Session, svc: Services, challenge_id, call_sid, call_status) -> bool:
    """Busy, no answer, failure, or hanging up while the call was still pending.

    Returns False when the call is not known (yet): a callback can overtake the commit
    of the request that placed the call.
    """
    reason = CALL_FAILURES.get(call_status)
    if reason is None:
        return True
    challenge = _find(db, challenge_id, call_sid)
    if challenge is None:
        return False
    if challenge.status == "pending":
        _deny(db, svc, challenge, reason)
    return True


# --- helpers ---


def _find(db: Session, challenge_id, call_sid) -> Challenge | None:
    if not is_id(challenge_id) or not isinstance(call_sid, str):
        return None
    challenge = db.get(Challenge, challenge_id, options=WITH_CONTEXT)
    if challenge is None or challenge.type != "voice" or challenge.provider_sid != call_sid:
        return None
    return challenge


def _live(db, svc, challenge_id, call_sid) -> tuple[Challenge | None, CallTurn | None]:
    challenge = _find(db, challenge_id, call_sid)
    if challenge is None:
        return None, CallTurn("goodbye")
    if challenge.status != "pending":
        return None, _turn(challenge, ENDINGS.get(challenge.reason or challenge.status, "goodbye"))
    if not challenge.is_pending(svc.clock.now()) or challenge.authentication.status != "pending":
        _claim(db, challenge, "ended", "ended")  # the sign-in moved on without this call
        return None, _turn(challenge, "goodbye")
    if challenge.authentication.user.is_locked(svc.clock.now()):
        _deny(db, svc, challenge, "locked")  # blocked meanwhile (e.g. 0# on another call)
        return None, _turn(challenge, "goodbye")
    return challenge, None


def _turn(challenge: Challenge, outcome: str) -> CallTurn:
    return CallTurn(outcome, challenge.authentication.user.language, challenge.call_retries)


def _claim(db: Session, challenge: Challenge, status: str, reason: str | None = None) -> bool:
    """Compare-and-set the pending challenge: exactly one webhook wins."""
    values = {"status": status, "reason": reason or status, "call_step": reason or status}
    won = db.execute(
        update(Challenge)
        .where(Challenge.id == challenge.id, Challenge.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if won:
        remember(challenge, **values)
    else:
        db.refresh(challenge, list(values))
    return won


def _set_step(db: Session, challenge: Challenge, step: str) -> None:
    challenge.call_step = step


def _approve(db, svc, challenge: Challenge) -> CallTurn:
    if not _claim(db, challenge, "approved"):
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    auth = challenge.authentication
    if not finish(db, svc, auth, "approved", "verified"):
        return _turn(challenge, "goodbye")  # the sign-in ended meanwhile: nothing to approve
    if not challenge.method.is_verified:
        activate(db, svc, challenge.method, None)
    reset_failures(db, auth.user)
    audit.record(db, svc.clock, "sign_in", "approved", user=auth.user, method=challenge.method.label,
                 reason="verified", detail="hash key pressed on the call")
    return _turn(challenge, "verified")


def _report_fraud(db, svc, challenge: Challenge) -> CallTurn:
    if not _claim(db, challenge, "fraud"):
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    auth = challenge.authentication
    finish(db, svc, auth, "fraud_reported", "fraud_reported")
    db.execute(update(User).where(User.id == auth.user_id, User.fraud_blocked_at.is_(None))
               .values(fraud_blocked_at=svc.clock.now()).execution_options(synchronize_session=False))
    _end_other_sign_ins(db, svc, auth)
    audit.record(db, svc.clock, "fraud_reported", "blocked", user=auth.user, method=challenge.method.label,
                 reason="fraud_reported", source_ip=auth.source_ip,
                 detail="0# pressed on the verification call; account blocked until `users unlock`")
    log.warning("FRAUD REPORTED by %s on %s: account blocked until unlocked (sign-in from %s)",
                auth.user.username, challenge.method.label, auth.source_ip)
    return _turn(challenge, "fraud_recorded")


def _do_not_call(db, svc, challenge: Challenge) -> CallTurn:
    if not _claim(db, challenge, "denied", "do_not_call"):
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    method = challenge.method
    if db.scalar(select(DoNotCall).where(DoNotCall.phone_lookup.in_(svc.vault.keyed_hashes(
            svc.vault.decrypt(method.phone_encrypted))))) is None:
        db.add(DoNotCall(phone_lookup=method.phone_lookup, label=method.label, created_at=svc.clock.now()))
    auth = challenge.authentication
    finish(db, svc, auth, "denied", "do_not_call")
    audit.record(db, svc.clock, "do_not_call", "denied", user=auth.user, method=method.label,
                 reason="do_not_call", detail="9 pressed: the answerer does not know this sign-in")
    return _turn(challenge, "do_not_call")


def _retry_or_deny(db, svc, challenge: Challenge, reprompt: str, reason: str, turn) -> CallTurn:
    seen = challenge.call_retries
    if turn is not None and turn != seen:
        # A repeated delivery of an earlier turn: say again what was said then.
        return _turn(challenge, challenge.call_step if challenge.call_step in REPROMPTS else "prompt")
    retried = db.execute(
        update(Challenge)
        .where(Challenge.id == challenge.id, Challenge.status == "pending",
               Challenge.call_retries == seen, Challenge.call_retries < MAX_REPROMPTS)
        .values(call_retries=Challenge.call_retries + 1, call_step=reprompt)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if retried:
        remember(challenge, call_retries=seen + 1, call_step=reprompt)
        return _turn(challenge, reprompt)
    _deny(db, svc, challenge, reason)
    return _turn(challenge, ENDINGS[reason])


def _deny(db, svc, challenge: Challenge, reason: str) -> None:
    if not _claim(db, challenge, "denied", reason):
        return
    auth = challenge.authentication
    finish(db, svc, auth, "denied", reason)
    audit.record(db, svc.clock, "challenge_failed", "denied", user=auth.user,
                 method=challenge.method.label, reason=reason)


def _end_other_sign_ins(db, svc, reported: Authentication) -> None:
    """After a fraud report no other sign-in of that person may go on: end them, hang up their calls."""
    others = db.scalars(select(Authentication).where(
        Authentication.user_id == reported.user_id, Authentication.id != reported.id,
        Authentication.status.in_(OPEN_STATUSES))).all()
    for other in others:
        calls = [c.provider_sid for c in db.scalars(select(Challenge).where(
            Challenge.authentication_id == other.id, Challenge.status == "pending",
            Challenge.type == "voice")) if c.provider_sid]
        finish(db, svc, other, "locked", "fraud_reported")
        for call_sid in calls:
            try:
                svc.telephony.end_call(call_sid)
            except Exception:  # its own webhooks will say goodbye: the account is blocked anyway
                log.warning("could not end call %s after a fraud report", call_sid, exc_info=True)
