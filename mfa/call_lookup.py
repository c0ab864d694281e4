"""Which challenge a call's webhook is about, by its challenge id and CallSid.

Every call placed for a challenge is recognised: a call whose CallSid was never recorded
(placed while the challenge was "sending", or "unknown" after a lost answer from the
provider) is adopted by its first webhook. An older call answered after a newer challenge
replaced it, while the sign-in still waits, becomes the call under way again (revive): it
never says "ended" to a person who is signing in.
"""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from models import Challenge
from models.base import is_id
from models.states import SUPERSEDED, AuthStatus, ChallengeStatus, Reason
from mfa.authentications import can_continue, set_status
from mfa.compare_and_set import compare_and_set
from mfa.method_types import Call
from mfa.queries import CHALLENGE_WITH_CONTEXT
from mfa.services import Services

# Challenges whose call may ring without a recorded CallSid: the first webhook names it.
ADOPTABLE = (ChallengeStatus.SENDING, ChallengeStatus.UNKNOWN, ChallengeStatus.REPLACED)


def find(db: Session, challenge_id: object, call_sid: object) -> Challenge | None:
    """The call challenge that `call_sid` is, adopting it if its CallSid was never recorded."""
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


def revive(db: Session, svc: Services, challenge: Challenge) -> None:
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
