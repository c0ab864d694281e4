"""A verification call, turn by turn: what each webhook means for the sign-in.

`#` approves (or, on a number-matched call, the two digits shown on the sign-in
screen: a wrong number is refused, audited as suspicious, and a second one denies
the sign-in); `0#`, or `0` and then `#` at the question that follows, reports fraud
and blocks the account; `9` puts the number on the do-not-call list; `*` repeats
the question; silence or another key gets one more go, then denies. A set-up call
(registering a phone) has no fraud report: `0` there is a wrong key. What keys mean
is mfa/call_keys.py.
Every change is a compare-and-set on the pending challenge, so a repeated or
late webhook changes nothing twice and hears the same ending again.

Which challenge a webhook is about (adopting a call whose CallSid was never
recorded, reviving an older call answered while the sign-in waits) is
mfa/call_lookup.py.
Calls are never ended from inside a transaction: CallTurn carries the CallSids to
end, and the webhook ends them after its commit (end_calls).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import String, bindparam, case, func, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.orm import Session

from models import Authentication, Challenge, DoNotCall
from models.states import AuthStatus, ChallengeStatus, Reason
from mfa import audit, call_keys, call_lookup, fraud_reports, spend
from mfa.accounts import record_failure, reset_failures
from mfa.authentications import finish, hold_challenges
from mfa.compare_and_set import compare_and_set, remember
from mfa.call_keys import ASKS, MENU
from mfa.locks import lock_person
from mfa.methods import activate, registered_meanwhile
from mfa.policy import HASH, NUMBER
from mfa.queries import on_do_not_call_list
from mfa.services import Services

log = logging.getLogger("mfa.calls")

MAX_REPROMPTS = 1
MAX_MISMATCHES = 2  # wrong numbers keyed on a number-matched call: the last one denies the sign-in
REPROMPTS = ("reprompt_no_input", "reprompt_wrong_key", "reprompt_mismatch")
# Machine detection's verdicts (AnsweredBy) that end a call: a voicemail greeting that has reached
# its beep, or a fax. Every other verdict (human, unknown, machine_start: often a person with a long
# greeting, machine_end_silence, machine_end_other) lets the prompt play: a key is still needed to
# approve, so a wrong guess costs nothing and never locks a person out of calls.
MACHINE_ENDINGS = ("machine_end_beep", "fax")
RINGING = "ringing"  # Twilio's CallStatus, and the call_step the call page reads it from
# Twilio's CallStatus for a call that ended before anyone pressed a key.
CALL_FAILURES: dict[str | None, Reason] = {
    "busy": Reason.BUSY, "no-answer": Reason.NO_ANSWER, "failed": Reason.CALL_FAILED,
    "canceled": Reason.CANCELED, "completed": Reason.HUNG_UP,
}
# Calls that rang with nobody there to answer: after LIMIT_UNANSWERED_CALLS of them in a day the
# number gets no more calls (mfa/spend.py). Not "no input", a wrong key or a hang-up (someone answered),
# nor a failed call (it never rang, and costs nothing).
UNANSWERED = (Reason.NO_ANSWER, Reason.BUSY, Reason.MACHINE_ANSWERED)
# What a finished challenge says again if its webhook is repeated.
ENDINGS: dict[str | None, str] = {
    ChallengeStatus.APPROVED: "verified", ChallengeStatus.FRAUD: "fraud_recorded", Reason.DO_NOT_CALL: "do_not_call",
    Reason.NO_INPUT: "no_input_goodbye", Reason.WRONG_KEY: "wrong_key_goodbye",
    Reason.NUMBER_MISMATCH: "mismatch_goodbye",
}


@dataclass(frozen=True)
class CallTurn:
    """What the caller hears next: an outcome name the call flow turns into TwiML.

    `turn` counts the prompts repeated so far; it goes into the next webhook
    URLs, so a repeated delivery of an older turn is recognised and replayed.
    `ask` (the question the next gather asks) and `repeats` (the `*` repeats heard
    so far) go into those URLs too: Twilio signs them, so they come back as given.
    """

    outcome: str
    language: str = "en-GB"
    turn: int = 0
    end_calls: tuple[str, ...] = ()  # other calls to hang up once this turn is committed
    ask: str = MENU
    approval: str = HASH  # what the menu asks for: the hash key, or the number on the sign-in screen
    repeats: int = 0
    setting_up: bool = False  # a registration call: it proves a new phone, nobody is signing in


@dataclass(frozen=True)
class Asked:
    """The question a webhook's keys answer, from its URL (ivr/webhook_urls.py)."""

    turn: int | None = None  # None: a URL without one (nothing to recognise a replay by)
    ask: str = MENU
    repeats: int = 0


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
    if answered_by in MACHINE_ENDINGS:  # synchronous detection's verdict, the same rule as machine_detected
        _deny(db, svc, challenge, Reason.MACHINE_ANSWERED)
        return _turn(challenge, "hangup")
    _set_step(db, challenge, "answered")
    return _turn(challenge, "prompt")


def keys_pressed(db: Session, svc: Services, challenge_id: object, call_sid: object, digits: object,
                 turn: int | None = None, ask: str = MENU, repeats: int = 0) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    assert challenge is not None  # _live returns one or the other
    meant = call_keys.meaning(digits if isinstance(digits, str) else "", ask if ask in ASKS else MENU,
                              challenge.number_match, max(repeats, 0), setting_up=_setting_up(challenge))
    asked = _asked(challenge, turn, ask, repeats)
    if meant == call_keys.APPROVE:
        return _approve(db, svc, challenge)
    if meant == call_keys.REPORT_FRAUD:
        return _report_fraud(db, svc, challenge)
    if meant == call_keys.DO_NOT_CALL:
        return _do_not_call(db, svc, challenge)
    if meant == call_keys.ASK_FRAUD:  # nothing changes: the next gather's URL says what it asks
        _audit_fraud_key(db, svc, challenge)
        return _turn(challenge, "prompt", call_keys.CONFIRM_FRAUD, asked.repeats)
    if meant == call_keys.REPEAT:
        return _turn(challenge, "prompt", asked.ask, asked.repeats + 1)
    if meant == call_keys.MISMATCH:
        return _number_mismatch(db, svc, challenge, asked)
    if meant == call_keys.NO_INPUT:
        return _retry_or_deny(db, svc, challenge, "reprompt_no_input", Reason.NO_INPUT, asked)
    return _retry_or_deny(db, svc, challenge, "reprompt_wrong_key", Reason.WRONG_KEY, asked)


def heard_nothing(db: Session, svc: Services, challenge_id: object, call_sid: object,
                  turn: int | None = None, ask: str = MENU, repeats: int = 0) -> CallTurn:
    challenge, ending = _live(db, svc, challenge_id, call_sid)
    if ending:
        return ending
    assert challenge is not None  # _live returns one or the other
    asked = _asked(challenge, turn, ask, repeats)
    if asked.ask == call_keys.CONFIRM_FRAUD and asked.repeats < call_keys.MAX_REPEATS:
        # The `#` of `0#` may have been lost between the two questions: ask again, whatever
        # reprompts the call has used, so a lost key never turns a fraud report into a denial.
        return _turn(challenge, "reprompt_no_input", call_keys.CONFIRM_FRAUD, asked.repeats + 1)
    return _retry_or_deny(db, svc, challenge, "reprompt_no_input", Reason.NO_INPUT, asked)


def status_changed(db: Session, svc: Services, challenge_id: object, call_sid: object,
                   call_status: str | None) -> bool:
    """Ringing (the call page says so), or an ending while the call was still pending: busy,
    no answer, failure, or hanging up.

    Returns False when the call is not known (yet): a callback can overtake the commit
    of the request that placed the call.
    """
    reason = CALL_FAILURES.get(call_status)
    if reason is None and call_status != RINGING:
        return True
    challenge = call_lookup.find(db, challenge_id, call_sid)
    if challenge is None:
        return False
    if challenge.status != ChallengeStatus.PENDING:
        return True
    if reason is not None:
        _deny(db, svc, challenge, reason)
    elif challenge.call_step is None:  # only before the answer: a late "ringing" never moves a call back
        compare_and_set(db, challenge, where=[Challenge.status == ChallengeStatus.PENDING,
                                              Challenge.call_step.is_(None)], call_step=RINGING)
    return True


def machine_detected(db: Session, svc: Services, challenge_id: object, call_sid: object,
                     answered_by: object) -> tuple[str, ...]:
    """Asynchronous machine detection's verdict, which comes while the prompt plays.

    Only a voicemail's beep or a fax ends the call: denied `machine_answered`, and the call
    is returned for the webhook to hang up after its commit (end_calls). Any other verdict,
    a repeated one, or one for a call already approved or ended changes nothing.
    """
    if answered_by not in MACHINE_ENDINGS:
        return ()
    challenge = call_lookup.find(db, challenge_id, call_sid)
    if challenge is None or challenge.status != ChallengeStatus.PENDING:
        return ()
    if not _deny(db, svc, challenge, Reason.MACHINE_ANSWERED):
        return ()
    assert challenge.provider_sid is not None  # call_lookup.find matched the call by it
    return (challenge.provider_sid,)


# --- helpers ---


def _live(db: Session, svc: Services, challenge_id: object,
          call_sid: object) -> tuple[Challenge | None, CallTurn | None]:
    challenge = call_lookup.find(db, challenge_id, call_sid)
    if challenge is None:
        return None, CallTurn("goodbye")
    if challenge.status == ChallengeStatus.REPLACED:
        call_lookup.revive(db, svc, challenge)
    if challenge.status != ChallengeStatus.PENDING:
        return None, _turn(challenge, ENDINGS.get(challenge.reason or challenge.status, "goodbye"))
    # Open, not only pending: a call adopted before its send was recorded rings for a sign-in
    # that the record step has not yet moved to pending.
    # A sign-in the person cancelled keeps its call: its answerer may still report it (0#) or stop
    # calls (9); `#` approves nothing (_approve). See mfa/cancellation.py.
    auth = challenge.authentication
    if not challenge.is_pending(svc.clock.now()) or not (auth.is_open() or _cancelled(auth)):
        claim(db, challenge, ChallengeStatus.ENDED, Reason.ENDED)  # the sign-in moved on without this call
        return None, _turn(challenge, "goodbye")
    if challenge.authentication.user.is_locked(svc.clock.now()):
        _deny(db, svc, challenge, Reason.LOCKED)  # blocked meanwhile (e.g. 0# on another call)
        return None, _turn(challenge, "goodbye")
    return challenge, None


def _cancelled(auth: Authentication) -> bool:
    return auth.status == AuthStatus.DENIED and auth.reason == Reason.CANCELLED_BY_PERSON


def _setting_up(challenge: Challenge) -> bool:
    """A registration call: it proves a new phone, nobody is signing in (no fraud question)."""
    return challenge.purpose == "registration"


def _asked(challenge: Challenge, turn: int | None, ask: str, repeats: int) -> Asked:
    # A set-up call never asks the fraud question: after a URL naming it (an older release's),
    # the next question is the set-up menu.
    known = ask in ASKS and not (ask == call_keys.CONFIRM_FRAUD and _setting_up(challenge))
    return Asked(turn, ask if known else MENU, max(repeats, 0))


def _turn(challenge: Challenge, outcome: str, ask: str = MENU, repeats: int = 0) -> CallTurn:
    return CallTurn(outcome, challenge.authentication.user.language, challenge.call_retries, ask=ask,
                    approval=NUMBER if challenge.number_match else HASH, repeats=repeats,
                    setting_up=_setting_up(challenge))


_THIS_ONE = aliased(Challenge)
_OURS = Challenge.id == bindparam("ours")
# claim with ending_the_rest, built once (an alias costs more to build than to run).
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


def claim(db: Session, challenge: Challenge, status: ChallengeStatus, reason: Reason | None = None, *,
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
    if _cancelled(challenge.authentication):  # Cancel was pressed on the sign-in page: nothing to approve
        claim(db, challenge, ChallengeStatus.ENDED, Reason.CANCELLED_BY_PERSON)
        return _turn(challenge, "goodbye")
    if not claim(db, challenge, ChallengeStatus.APPROVED, ending_the_rest=Reason.VERIFIED):
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
    if not finish(db, svc, auth, AuthStatus.APPROVED, Reason.VERIFIED, challenges_ended=True,
                  approved_with=challenge.method.type):
        return _turn(challenge, "goodbye")  # the sign-in ended meanwhile: nothing to approve
    if not challenge.method.is_verified:
        activate(db, svc, challenge.method, None)
    reset_failures(db, auth.user)
    audit.record(db, svc.clock, "sign_in", "approved", user=auth.user, method=challenge.method.label,
                 method_type=challenge.method.type, reason=Reason.VERIFIED,
                 detail="the number on the sign-in screen keyed on the call" if challenge.number_match
                 else "hash key pressed on the call")
    return _turn(challenge, "verified")


def _report_fraud(db: Session, svc: Services, challenge: Challenge) -> CallTurn:
    fraud_reports.hold_challenges_under_way(db, challenge.authentication.user_id)  # before the person
    if not claim(db, challenge, ChallengeStatus.FRAUD):
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    auth = challenge.authentication
    to_end = fraud_reports.block(db, svc, auth, challenge.method, "0# pressed on the verification call")
    return CallTurn("fraud_recorded", auth.user.language, challenge.call_retries, tuple(to_end))


def _do_not_call(db: Session, svc: Services, challenge: Challenge) -> CallTurn:
    if not claim(db, challenge, ChallengeStatus.DENIED, Reason.DO_NOT_CALL):
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
                   asked: Asked) -> CallTurn:
    seen = challenge.call_retries
    if asked.turn is not None and asked.turn != seen:
        return _replayed(challenge, asked)
    # Turns taken by a refused number (challenge.attempts, _number_mismatch) are not this reprompt's.
    if seen - challenge.attempts < MAX_REPROMPTS:
        if compare_and_set(db, challenge, where=[Challenge.status == ChallengeStatus.PENDING,
                                                 Challenge.call_retries == seen],
                           read_back=["status", "reason"], call_retries=seen + 1, call_step=reprompt):
            return _turn(challenge, reprompt, asked.ask, asked.repeats)
        return _lost_turn(challenge, asked)
    _deny(db, svc, challenge, reason)
    return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))


def _number_mismatch(db: Session, svc: Services, challenge: Challenge, asked: Asked) -> CallTurn:
    """Two digits that are not the number on the sign-in screen: whoever answered may be
    approving a sign-in they cannot see (an attacker's, MFA fatigue). Refused, audited as
    suspicious and counted as a failed attempt (the account lockout); the second on a sign-in,
    on this call or an earlier one, ends it (not retryable: the person starts again), so hanging
    up and asking for another call buys no more guesses."""
    seen, mismatches = challenge.call_retries, challenge.attempts
    if asked.turn is not None and asked.turn != seen:
        return _replayed(challenge, asked)
    auth = challenge.authentication
    # record_failure writes the person; the call comes first, as for a typed code (mfa/locks.py).
    hold_challenges(db, auth)
    lock_person(db, auth.user_id)
    if _earlier_mismatches(db, challenge) + mismatches + 1 < MAX_MISMATCHES:
        if not compare_and_set(db, challenge, where=[Challenge.status == ChallengeStatus.PENDING,
                                                     Challenge.call_retries == seen, Challenge.attempts == mismatches],
                               read_back=["status", "reason"], call_retries=seen + 1, attempts=mismatches + 1,
                               call_step="reprompt_mismatch"):
            return _lost_turn(challenge, asked)
        _audit_mismatch(db, svc, challenge, "refused; the caller may key the number once more")
        record_failure(db, svc, auth.user, auth.source_ip, via_api=auth.api_key_id is not None)
        return _turn(challenge, "reprompt_mismatch", asked.ask, asked.repeats)
    if _deny(db, svc, challenge, Reason.NUMBER_MISMATCH):
        _audit_mismatch(db, svc, challenge, "a second wrong number on this sign-in: it is denied")
        record_failure(db, svc, auth.user, auth.source_ip, via_api=auth.api_key_id is not None)
    return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))


def _earlier_mismatches(db: Session, challenge: Challenge) -> int:
    """Wrong numbers keyed on the sign-in's other calls (each call counts its own in `attempts`)."""
    return db.scalar(select(func.coalesce(func.sum(Challenge.attempts), 0)).where(
        Challenge.authentication_id == challenge.authentication_id, Challenge.id != challenge.id,
        Challenge.type == challenge.type)) or 0


def _audit_fraud_key(db: Session, svc: Services, challenge: Challenge) -> None:
    """`0` on the call: a report on its way; kept even if `#` never follows (the caller hangs up)."""
    auth = challenge.authentication
    audit.record(db, svc.clock, "fraud_key_pressed", "suspicious", user=auth.user, method=challenge.method.label,
                 method_type=challenge.method.type, source_ip=auth.source_ip,
                 detail="0 pressed on the call; the caller was asked to press # to report the sign-in")


def _audit_mismatch(db: Session, svc: Services, challenge: Challenge, detail: str) -> None:
    auth = challenge.authentication
    audit.record(db, svc.clock, "number_mismatch", "suspicious", user=auth.user, method=challenge.method.label,
                 method_type=challenge.method.type, reason=Reason.NUMBER_MISMATCH, source_ip=auth.source_ip,
                 detail=f"a number other than the one on the sign-in screen was keyed on the call; {detail}")
    log.warning("NUMBER MISMATCH on the call to %s for %s (sign-in from %s): %s",
                challenge.method.label, auth.user.username, auth.source_ip, detail)


def _replayed(challenge: Challenge, asked: Asked) -> CallTurn:
    """A repeated delivery of an earlier turn: say again what was said then."""
    said = challenge.call_step if challenge.call_step in REPROMPTS else "prompt"
    return _turn(challenge, said, asked.ask, asked.repeats)


def _lost_turn(challenge: Challenge, asked: Asked) -> CallTurn:
    """Another delivery of the same webhook took this turn first (its compare-and-set won, and
    `challenge` now shows what it wrote): hear what it heard, change nothing twice."""
    if challenge.status != ChallengeStatus.PENDING:
        return _turn(challenge, ENDINGS.get(challenge.reason, "goodbye"))
    return _replayed(challenge, asked)


def _deny(db: Session, svc: Services, challenge: Challenge, reason: Reason) -> bool:
    """Deny the pending challenge and its sign-in; False if another webhook ended it first."""
    if not claim(db, challenge, ChallengeStatus.DENIED, reason, ending_the_rest=reason):
        return False
    if reason in UNANSWERED:
        spend.mark_unanswered(db, challenge.id)
    auth = challenge.authentication
    finish(db, svc, auth, AuthStatus.DENIED, reason, challenges_ended=True)
    audit.record(db, svc.clock, "challenge_failed", "denied", user=auth.user,
                 method=challenge.method.label, method_type=challenge.method.type, reason=reason)
    return True
