"""Facts the domain states about what happened, for whoever watches (ops/counters.py counts them).

audit.record notes one Outcome per audit event in the session's `info`; ops takes them after
the session commits, so a use case that rolls back reports nothing, and a refusal (wrong
code, locked account), which commits its bookkeeping, is reported. The domain says which
kind of method decided, in so many words: nothing downstream reads labels or detail text.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

# Besides a method's own type (Method.type: totp, sms, voice), two that no method row has:
PASSWORD = "password"  # the first factor alone decided (a wrong password, no second factor needed)
TYPED_CODE = "code"  # a typed code that matched no method: it could have been a text's or the app's
# The one fact that is no audit event: a call or text ended before Twilio said a word about it
# (mfa/unheard.py). Its method_type is the challenge's (voice, sms).
CHALLENGE_UNHEARD = "challenge_unheard"

PENDING_KEY = "mfa_outcomes"


@dataclass(frozen=True)
class Outcome:
    """One audit event as a value: what happened, how it ended, by which kind of method, why.

    `method_type` is None when no method had a part in it (an API key created, a sign-in
    that ran out of time).
    """
    event: str
    outcome: str
    method_type: str | None
    reason: str | None


def note(db: Session, fact: Outcome) -> None:
    """Keep `fact` with the session until it commits (or forget it if it rolls back)."""
    db.info.setdefault(PENDING_KEY, []).append(fact)


def take(db: Session) -> list[Outcome]:
    """The facts noted since the last commit or rollback; the session keeps none of them."""
    taken: list[Outcome] = db.info.pop(PENDING_KEY, [])
    return taken
