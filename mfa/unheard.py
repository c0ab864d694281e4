"""Calls and texts Twilio never reported back on: the sign of webhooks that cannot reach us.

Twilio reports on every call it places (the "ringing" status callback, then the answer
webhook) and on every text it sends (the "sent" and "delivered" callbacks) by requesting
PUBLIC_BASE_URL. When it cannot (a certificate it does not trust gives Twilio error 11205;
a firewall; a wrong PUBLIC_BASE_URL) the sign-in just stays pending, and nothing else says
why. So a challenge that ends still unheard of is stated as a fact (counted as
mfa_challenges_unheard_total) and logged once, naming the call or text.

"Heard of" needs no column of its own: a call's `call_step` is set by its first callback or
webhook and by nothing else while it is pending; a text has no call flow, so its first
delivery report is written there (heard_of_text).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.orm import Session

from models import Challenge
from models.states import ChallengeStatus
from mfa import facts
from mfa.method_types import REGISTRY, types_where

log = logging.getLogger("mfa.telephony")

# Twilio's first report comes within seconds: a challenge ended sooner than this proves nothing.
REPORT_EXPECTED_WITHIN = timedelta(seconds=30)
TEXTS = types_where(twilio_sends_as="text")
SENT_BY_TWILIO = tuple(t.name for t in REGISTRY.values() if t.twilio_sends_as)
# The awaiting gauge looks this far back: long enough for an alert's `for`, short enough that
# one silent call does not hold it up for good.
AWAITING_WINDOW = timedelta(hours=1)

TEXT_HEARD_OF = (
    update(Challenge)
    .where(Challenge.provider_sid == bindparam("sid"), Challenge.type.in_(TEXTS),
           Challenge.status == ChallengeStatus.PENDING, Challenge.call_step.is_(None))
    .values(call_step=bindparam("reported", type_=String))
    .execution_options(synchronize_session=False)
)


class Ending(Protocol):
    """A pending challenge as it ends: a Challenge, or a row an UPDATE … RETURNING gave back."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def provider_sid(self) -> str | None: ...
    @property
    def call_step(self) -> str | None: ...
    @property
    def last_sent_at(self) -> datetime: ...


def heard_of_text(db: Session, message_sid: str, status: str) -> None:
    """A delivery report for a text still pending: Twilio can reach us (one UPDATE; the first report writes)."""
    db.execute(TEXT_HEARD_OF, {"sid": message_sid, "reported": status[:32] or "reported"})


def awaiting_report(db: Session, now: datetime) -> dict[str, int]:
    """Calls and texts placed in the last hour, more than REPORT_EXPECTED_WITHIN ago, still pending and
    not yet reported on, by type. Read from the database, so it holds whether or not anyone looks at
    their sign-in again (a cancelled sign-in's call stays pending for fraud reports; a closed tab
    never expires its sign-in), and it falls back to 0 once Twilio's reports arrive."""
    rows = db.execute(
        select(Challenge.type, func.count())
        .where(Challenge.type.in_(SENT_BY_TWILIO), Challenge.status == ChallengeStatus.PENDING,
               Challenge.provider_sid.is_not(None), Challenge.call_step.is_(None),
               Challenge.last_sent_at <= now - REPORT_EXPECTED_WITHIN,
               Challenge.last_sent_at > now - AWAITING_WINDOW)
        .group_by(Challenge.type)).all()
    return {name: 0 for name in SENT_BY_TWILIO} | {name: count for name, count in rows}


def note_unheard(db: Session, now: datetime, ending: Iterable[Ending]) -> None:
    """State (and log) each of these pending challenges that Twilio never said a word about."""
    for challenge in ending:
        kind = REGISTRY.get(challenge.type)
        what = kind.twilio_sends_as if kind is not None else None
        if what is None or not challenge.provider_sid or challenge.call_step is not None:
            continue  # not Twilio's, never placed, or heard of
        if now - challenge.last_sent_at < REPORT_EXPECTED_WITHIN:
            continue
        log.warning("no word from Twilio about %s %s for challenge %s: check that Twilio can reach "
                    "PUBLIC_BASE_URL (TLS, firewall)", what, challenge.provider_sid, challenge.id)
        facts.note(db, facts.Outcome(facts.CHALLENGE_UNHEARD, "unheard", challenge.type, None))
