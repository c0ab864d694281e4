"""A verification call, turn by turn: what each webhook means for the sign-in.

`#` approves; `0#` reports fraud and blocks the account; `9` puts the number on
the do-not-call list; silence or another key gets one more go, then denies.
Every change is a compare-and-set on the pending challenge, so a repeated or
late webhook changes nothing twice and hears the same ending again.

Every call placed for a challenge is recognised: a call whose CallSid was never
recorded (placed while the challenge was "sending", or "unknown" after a lost
answer from the provider) is adopted by its first webhook. An older call answered
after a newer challenge replaced it, while the sign-in still waits, becomes the
call under way again: it never says "ended" to a person who is signing in.
Calls are never ended from inside a transaction: CallTurn carries the CallSids to
end, and the webhook ends them after its commit (end_calls).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import String, bindparam, case, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm import Session

from models import Authentication, Challenge, DoNotCall, User
from models.states import OPEN_STATUSES, SUPERSEDED, AuthStatus, ChallengeStatus, Reason
from models.base import is_id
from mfa import audit, browser_sessions
from mfa.accounts import reset_failures
from mfa.authentications import can_continue, finish, set_status
from mfa.compare_and_set import compare_and_set, remember
from mfa.locks import lock_person
from mfa.methods import activate, registered_meanwhile
from mfa.method_types import Call, types_where
from mfa.queries import CHALLENGE_WITH_CONTEXT, on_do_not_call_list
from mfa.services import Services

log = logging.getLogger("mfa.calls")

MAX_REPROMPTS = 1
# Challenges whose call may ring without a recorded CallSid: the first webhook names it.
ADOPTABLE = (ChallengeStatus.SENDING, ChallengeStatus.UNKNOWN, ChallengeStatus.REPLACED)
REPROMPTS = ("reprompt_no_input", "reprompt_wrong_key")
MACHINE_ANSWERS = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
# Twilio's CallStatus for a call that ended before anyone pressed a key.
CALL_FAILURES: dict[str | None, Reason] = {
    "busy": Reason.BUSY, "no-answer": Reason.NO_ANSWER, "failed": Reason.CALL_FAILED,
    "canceled": Reason.CANCELED, "completed": Reason.HUNG_UP,
}
# What a finished challenge says again if its webhook is repeated.
ENDINGS: dict[str | None, str] = {
    ChallengeStatus.APPROVED: "verified", ChallengeStatus.FRAUD: "fraud_recorded", Reason.DO_NOT_CALL: "do_not_call",
    Reason.NO_INPUT: "no_input_goodbye", Reason.WRONG_KEY: "wrong_key_goodbye",
}


@dataclass(frozen=True)
class CallTurn:
    """What the caller hears next: an outcome name the call flow turns into TwiML.

    `turn` counts the prompts repeated so far; it goes into the next webhook
    URLs, so a repeated delivery of an older turn is recognised and replayed.
    """

    outcome: str
    language: str = "en-GB"
    turn: int = 0
    end_calls: tuple[str, ...] = ()  # other calls to hang up once this turn is committed


def end_calls(svc: Services, call_sids: Iterable[str]) -> None:
    """Hang up calls no longer needed; best effort, after the commit (never inside a transaction)."""
    for call_sid in call_sids:
        try:
            svc.telephony.end_call(call_sid)
        except Exception:  # its own webhooks will say goodbye; never fail the caller's request
            log.warning("could not end call %s", call_sid, exc_info=True)


def answered(db: Session, svc: Services, challenge_id: object, call_sid: object, answered_by: object) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    assert challenge is not None  # _live returns one or the other
    if answered_by in MACHINE_ANSWERS:
        _deny(db, svc, challenge, Reason.MACHINE_ANSWERED)
        return _turn(challenge, "hangup")
    _set_step(db, challenge, "answered")
    return _turn(challenge, "prompt")


def keys_pressed(db: Session, svc: Services, challenge_id: object, call_sid: object, digits: object,
                 turn: int | None = None) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    assert challenge is not None  # _live returns one or the other
    digits = digits if isinstance(digits, str) else ""
    if digits == "#":
        return _approve(db, svc, challenge)
    if digits == "0#":
        return _report_fraud(db, svc, challenge)
    if digits in ("9", "9#"):
        return _do_not_call(db, svc, challenge)
    if digits == "":
        return _retry_or_deny(db, svc, challenge, "reprompt_no_input", Reason.NO_INPUT, turn)
    return _retry_or_deny(db, svc, challenge, "reprompt_wrong_key", Reason.WRONG_KEY, turn)


def heard_nothing(db: Session, svc: Services, challenge_id: object, call_sid: object,
                  turn: int | None = None) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    assert challenge is not None  # _live returns one or the other
    return _retry_or_deny(db, svc, challenge, "reprompt_no_input", Reason.NO_INPUT, turn)


def status_changed(db: Session, svc: Services, challenge_id: object, call_sid: object,
                   call_status: str | None) -> bool:
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
    if challenge.status == ChallengeStatus.PENDING:
        _deny(db, svc, challenge, reason)
    return True


# --- helpers ---


def _find(db: Session, challenge_id: object, call_sid: object) -> Challenge | None:
    if not is_id(challenge_id) or not isinstance(call_sid, str) or not call_sid:
        return None
    challenge = db.get(Challenge, challenge_id, options=CHALLENGE_WITH_CONTEXT)
    if challenge is None or challenge.type != Call.name:
        return None
    if challenge.provider_sid is None and challenge.status in ADOPTABLE:
        _adopt(db, challenge, call_sid)
    return challenge if challenge.provider_sid == call_sid else None


def _adopt(db: Session, challenge: Challenge, call_sid: str) -> None:
    """Name the challenge's call after the first webhook that reports it (a compare-and-set)."""
    status = ChallengeStatus.REPLACED if challenge.status == ChallengeStatus.REPLACED else ChallengeStatus.PENDING
    compare_and_set(db, challenge, where=[Challenge.provider_sid.is_(None), Challenge.status == challenge.status],
                    read_back=["reason"], provider_sid=call_sid, status=status)


def _revive(db: Session, svc: Services, challenge: Challenge) -> None:
    """An older call of a sign-in that still waits was answered: it is the one under way again.

    The person has that phone in hand; telling them "this verification has ended" while
    they are signing in would be wrong. The newer challenge is replaced in its turn.
    """
    auth, now = challenge.authentication, svc.clock.now()
    if challenge.purpose != "sign_in" or not can_continue(auth, now) or now >= challenge.expires_at:
        return
    if not compare_and_set(db, challenge, where=[Challenge.status == ChallengeStatus.REPLACED],
                           status=ChallengeStatus.PENDING, reason=None):
        return
    db.execute(
        update(Challenge)
        .where(Challenge.authentication_id == auth.id, Challenge.id != challenge.id,
               Challenge.status.in_(SUPERSEDED))
        .values(status=ChallengeStatus.REPLACED, reason=Reason.REPLACED)
        .execution_options(synchronize_session=False)
    )
    if auth.status != AuthStatus.PENDING:  # e.g. the newer call went unanswered: this one now stands
        set_status(db, svc, auth, AuthStatus.PENDING)


def _live(db: Session, svc: Services, challenge_id: object,
          call_sid: object) -> tuple[Challenge | None, CallTurn | None]:
    challenge = _find(db, challenge_id, call_sid)
    if challenge is None:
        return None, CallTurn("goodbye")
    if challenge.status == ChallengeStatus.REPLACED:
        _revive(db, svc, challenge)
    if challenge.status != ChallengeStatus.PENDING:
        return None, _turn(challenge, ENDINGS.get(challenge.reason or challenge.status, "goodbye"))
    # Open, not only pending: a call adopted before its send was recorded rings for a sign-in
    # that the record step has not yet moved to pending.
    if not challenge.is_pending(svc.clock.now()) or not challenge.authentication.is_open():
        _claim(db, challenge, ChallengeStatus.ENDED, Reason.ENDED)  # the sign-in moved on without this call
        return None, _turn(challenge, "goodbye")
    if challenge.authentication.user.is_locked(svc.clock.now()):
        _deny(db, svc, challenge, Reason.LOCKED)  # blocked meanwhile (e.g. 0# on another call)
        return None, _turn(challenge, "goodbye")
    return challenge, None


def _turn(challenge: Challenge, outcome: str) -> CallTurn:
    return CallTurn(outcome, challenge.authentication.user.language, challenge.call_retries)


_THIS_ONE = aliased(Challenge)
_OURS = Challenge.id == bindparam("ours")
# _claim with ending_the_rest, built once (an alias costs more to build than to run).
CLAIM_ENDING_THE_REST = (
    update(Challenge)
    .where(Challenge.authentication_id == bindparam("auth_id"), Challenge.status == ChallengeStatus.PENDING,
           select(_THIS_ONE.id).where(_THIS_ONE.id == bindparam("ours"),
                                      _THIS_ONE.status == ChallengeStatus.PENDING).exists())
    .values(status=case((_OURS, bindparam("status", type_=String)), else_=ChallengeStatus.ENDED.value),
            reason=case((_OURS, bindparam("reason", type_=String)), else_=bindparam("rest_reason", type_=String)),
            call_step=case((_OURS, bindparam("step", type_=String)), else_=Challenge.call_step))
    .returning(Challenge.id)
    .execution_options(synchronize_session=False)
)


def _claim(db: Session, challenge: Challenge, status: ChallengeStatus, reason: Reason | None = None, *,
           ending_the_rest: Reason | None = None) -> bool:
    """Compare-and-set the pending challenge: exactly one webhook wins.

    With `ending_the_rest`, the same statement also ends the sign-in's other pending
    challenges, as finish() would (the caller then passes challenges_ended=True): one
    statement fewer on the busiest webhook. Only while this one is still pending, so a
    call that lost (replaced by a newer call) ends nothing.
    """
    values = {"status": status, "reason": reason or status, "call_step": reason or status}
    if ending_the_rest is None:
        return compare_and_set(db, challenge, where=[Challenge.status == ChallengeStatus.PENDING], **values)
    # Several rows in one statement: more than compare_and_set does, so it records the outcome itself.
    changed = db.scalars(CLAIM_ENDING_THE_REST, {
        "auth_id": challenge.authentication_id, "ours": challenge.id, "status": values["status"],
        "reason": values["reason"], "step": values["call_step"], "rest_reason": ending_the_rest}).all()
    won = challenge.id in changed
    if won:
        remember(challenge, **values)
    else:
        db.refresh(challenge, list(values))
    return won


def _set_step(db: Session, challenge: Challenge, step: str) -> None:
    challenge.call_step = step


def _approve(db: Session, svc: Services, challenge: Challenge) -> CallTurn:
    if not _claim(db, challenge, ChallengeStatus.APPROVED, ending_the_rest=Reason.VERIFIED):
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    auth = challenge.authentication
    if registered_meanwhile(db, auth):  # a first registration cannot finish after another one
        if finish(db, svc, auth, AuthStatus.DENIED, Reason.REGISTERED_MEANWHILE):
            audit.record(db, svc.clock, "sign_in", "denied", user=auth.user, reason=Reason.REGISTERED_MEANWHILE,
                         method=challenge.method.label, method_type=challenge.method.type,
                         detail="a first registration finished after the person registered")
        return _turn(challenge, "goodbye")
    if auth.user.failed_count:  # reset_failures will write the person: lock them before the sign-in
        lock_person(db, auth.user_id)  # (the order a send takes them in, mfa/locks.py)
    if not finish(db, svc, auth, AuthStatus.APPROVED, Reason.VERIFIED, challenges_ended=True):
        return _turn(challenge, "goodbye")  # the sign-in ended meanwhile: nothing to approve
    if not challenge.method.is_verified:
        activate(db, svc, challenge.method, None)
    reset_failures(db, auth.user)
    audit.record(db, svc.clock, "sign_in", "approved", user=auth.user, method=challenge.method.label,
                 method_type=challenge.method.type, reason=Reason.VERIFIED, detail="hash key pressed on the call")
    return _turn(challenge, "verified")


def _report_fraud(db: Session, svc: Services, challenge: Challenge) -> CallTurn:
    if not _claim(db, challenge, ChallengeStatus.FRAUD):
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    auth = challenge.authentication
    lock_person(db, auth.user_id)  # the person is blocked below: lock them before any sign-in
    finish(db, svc, auth, AuthStatus.FRAUD_REPORTED, Reason.FRAUD_REPORTED)
    db.execute(update(User).where(User.id == auth.user_id, User.fraud_blocked_at.is_(None))
               .values(fraud_blocked_at=svc.clock.now()).execution_options(synchronize_session=False))
    to_end = _end_other_sign_ins(db, svc, auth)
    browser_sessions.end_all_for_user(db, auth.user_id)  # "not me": no browser stays signed in
    audit.record(db, svc.clock, "fraud_reported", "blocked", user=auth.user, method=challenge.method.label,
                 method_type=challenge.method.type, reason=Reason.FRAUD_REPORTED, source_ip=auth.source_ip,
                 detail="0# pressed on the verification call; account blocked until `users unlock`")
    log.warning("FRAUD REPORTED by %s on %s: account blocked until unlocked (sign-in from %s)",
                auth.user.username, challenge.method.label, auth.source_ip)
    return CallTurn("fraud_recorded", auth.user.language, challenge.call_retries, tuple(to_end))


def _do_not_call(db: Session, svc: Services, challenge: Challenge) -> CallTurn:
    if not _claim(db, challenge, ChallengeStatus.DENIED, Reason.DO_NOT_CALL):
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    method = challenge.method
    assert method.phone_encrypted is not None  # calls go to phone methods only
    number = svc.vault.decrypt(method.phone_encrypted)
    if not on_do_not_call_list(db, svc.vault, number):
        db.add(DoNotCall(phone_lookup=svc.vault.keyed_hash(number), label=method.label, created_at=svc.clock.now()))
    auth = challenge.authentication
    finish(db, svc, auth, AuthStatus.DENIED, Reason.DO_NOT_CALL)
    audit.record(db, svc.clock, "do_not_call", "denied", user=auth.user, method=method.label, method_type=method.type,
                 reason=Reason.DO_NOT_CALL, detail="9 pressed: the answerer does not know this sign-in")
    return _turn(challenge, "do_not_call")


def _retry_or_deny(db: Session, svc: Services, challenge: Challenge, reprompt: str, reason: Reason,
                   turn: int | None) -> CallTurn:
    seen = challenge.call_retries
    if turn is not None and turn != seen:
        # A repeated delivery of an earlier turn: say again what was said then.
        return _turn(challenge, challenge.call_step if challenge.call_step in REPROMPTS else "prompt")
    # Past the last reprompt the database row cannot match either (call_retries only grows).
    if seen < MAX_REPROMPTS and compare_and_set(
            db, challenge, where=[Challenge.status == ChallengeStatus.PENDING, Challenge.call_retries == seen],
            call_retries=seen + 1, call_step=reprompt):
        return _turn(challenge, reprompt)
    _deny(db, svc, challenge, reason)
    return _turn(challenge, ENDINGS[reason])


def _deny(db: Session, svc: Services, challenge: Challenge, reason: Reason) -> None:
    if not _claim(db, challenge, ChallengeStatus.DENIED, reason, ending_the_rest=reason):
        return
    auth = challenge.authentication
    finish(db, svc, auth, AuthStatus.DENIED, reason, challenges_ended=True)
    audit.record(db, svc.clock, "challenge_failed", "denied", user=auth.user,
                 method=challenge.method.label, method_type=challenge.method.type, reason=reason)


def _end_other_sign_ins(db: Session, svc: Services, reported: Authentication) -> list[str]:
    """After a fraud report no other sign-in of that person may go on: end them.

    Returns their calls, for the webhook to hang up after its commit (calls.end_calls).
    """
    others = db.scalars(select(Authentication).where(
        Authentication.user_id == reported.user_id, Authentication.id != reported.id,
        Authentication.status.in_(OPEN_STATUSES))).all()
    calls: list[str] = []
    for other in others:
        calls += [c.provider_sid for c in db.scalars(select(Challenge).where(
            Challenge.authentication_id == other.id, Challenge.status == ChallengeStatus.PENDING,
            Challenge.type.in_(types_where(ends_by_hanging_up=True)))) if c.provider_sid]
        finish(db, svc, other, AuthStatus.LOCKED, Reason.FRAUD_REPORTED)
    return calls
