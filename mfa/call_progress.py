"""What the call page says while a verification call goes on, and what it offers when one ends.

The page follows the sign-in's newest call: the "ringing" status callback sets its `call_step`
(mfa.calls.status_changed), the answer webhook sets "answered" (the call flow's later steps
follow), and an ending denies the challenge with its reason. Each moment has one name, which
the page renders and /verify/status.json reports, so the page reloads when the name changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from models import Authentication, Challenge, Method
from models.states import AuthStatus, ChallengeStatus, Reason
from mfa.calls import RINGING
from mfa.method_types import AppCode, Call, Text

# While the call is under way.
CALLING, ANSWERED = "calling", "answered"
UNDER_WAY = (CALLING, RINGING, ANSWERED)
APPROVED = "approved"
NOT_CALLED = "not_called"  # this sign-in has placed no call (e.g. the wait between sends refused it)
# Endings without approval, by the reason the call was denied; any other is ENDED.
ENDED = "ended"
ENDINGS: dict[str | None, str] = {
    Reason.NO_ANSWER: "no_answer", Reason.BUSY: "busy", Reason.MACHINE_ANSWERED: "voicemail",
    Reason.HUNG_UP: "hung_up", Reason.CALL_FAILED: "failed", Reason.NO_INPUT: "no_key",
    Reason.WRONG_KEY: "wrong_key",
}
# Challenges whose call may still be ringing: placed, or placed without the provider's answer.
PLACED = (ChallengeStatus.SENDING, ChallengeStatus.PENDING, ChallengeStatus.UNKNOWN)


@dataclass(frozen=True)
class CallProgress:
    name: str
    number_match: str | None = None  # number mode: the two digits to key, while the call is under way

    @property
    def under_way(self) -> bool:
        return self.name in UNDER_WAY


@dataclass(frozen=True)
class NextSteps:
    """Ways to finish this sign-in, offered as soon as a call ends without approval."""

    call: Method | None = None  # the same phone again; never after its answerer pressed 9
    text: Method | None = None
    app: Method | None = None


def progress(auth: Authentication, call: Challenge | None, now: datetime) -> CallProgress:
    """The moment the page shows, from the sign-in and its newest call (None: no call placed)."""
    if auth.status == AuthStatus.APPROVED:
        return CallProgress(APPROVED)
    if call is None:
        return CallProgress(NOT_CALLED)
    if call.status not in PLACED or now >= call.expires_at:
        # Denied with its reason; or refused, replaced, ended, or past its time (its last callback lost).
        reason = call.reason if call.status == ChallengeStatus.DENIED else None
        failed = call.status == ChallengeStatus.FAILED
        return CallProgress("failed" if failed else ENDINGS.get(reason, ENDED))
    if call.status != ChallengeStatus.PENDING or call.call_step is None:
        return CallProgress(CALLING, call.number_match)
    return CallProgress(RINGING if call.call_step == RINGING else ANSWERED, call.number_match)


def newest_call(db: Session, auth_id: str) -> Challenge | None:
    """The call under way, else the newest call. A call still placed comes first: an older call
    answered after "Call me again" is revived (mfa/call_lookup.py) and replaces the newer one, and
    the page must show its number, not the replaced call's."""
    return db.scalars(select(Challenge).where(Challenge.authentication_id == auth_id, Challenge.type == Call.name)
                      .order_by(case((Challenge.status.in_(PLACED), 0), else_=1), Challenge.created_at.desc())
                      .limit(1)).first()


def of(db: Session, auth: Authentication, now: datetime) -> CallProgress:
    """Where the sign-in's call has got to, for the page and its status poll."""
    return progress(auth, newest_call(db, auth.id), now)


def next_steps(auth: Authentication, called: Method | None) -> NextSteps:
    """The call again, a text to the same phone (else any phone), and the app, when the person has them.

    Only the call again while registering: only the method being registered can finish that sign-in.
    """
    call = None if auth.reason == Reason.DO_NOT_CALL else called
    if auth.registering:
        return NextSteps(call=call)
    verified = auth.user.verified_methods()
    texts = [m for m in verified if m.type == Text.name]
    same_phone = [m for m in texts if called is not None and m.phone_lookup == called.phone_lookup]
    apps = [m for m in verified if m.type == AppCode.name]
    return NextSteps(call=call, text=next(iter(same_phone or texts), None), app=next(iter(apps), None))
