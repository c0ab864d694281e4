"""Counters for operators (Prometheus): sign-ins and challenges by method and outcome, Twilio errors.

The domain states what happened as facts (mfa.facts.Outcome, one per audit event, naming
the method's type); count_after_commit hooks the application's own session factory so
that they are counted once their session commits and dropped when it rolls back. Sessions
made anywhere else in the process (a tool's, a test's) count nothing.

Labels stay few and fixed: method is a type (password, code, totp, sms, voice; `none` when
no method had a part, as for a sign-in that ran out of time), never a label or a number.
Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR before start-up;
prometheus_client then keeps these values in files that /metrics adds up.
"""
from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from mfa import facts
from mfa.facts import Outcome

SIGN_INS = Counter(
    "mfa_sign_ins", "Sign-ins reaching a decision, by the method that decided it and the outcome.",
    ["method", "outcome"],
)
CHALLENGES = Counter(
    "mfa_challenges", "Second-factor challenges and code checks, by method and outcome.",
    ["method", "outcome"],
)
AUDIT_EVENTS = Counter("mfa_audit_events", "Every audit event, by event and outcome.", ["event", "outcome"])
TWILIO_ERRORS = Counter("mfa_twilio_errors", "Failed requests to Twilio's REST API, by Twilio error code.", ["code"])
TWILIO_ACCOUNT_ERRORS = Counter(
    "mfa_twilio_account_errors",
    "Twilio refusals that are the operator's to fix (credentials, account, sender, API URL), by code.",
    ["code"],
)

NO_METHOD = "none"
SIGN_IN_EVENTS = frozenset({"sign_in", "password_checked", "fraud_reported"})
# Events that end a challenge (or a typed code's check): counted by their reason.
CHALLENGE_ENDINGS = frozenset({"challenge_failed", "code_check", "do_not_call", "fraud_reported"})


def count(fact: Outcome) -> None:
    AUDIT_EVENTS.labels(fact.event, fact.outcome).inc()
    method = fact.method_type or NO_METHOD
    if fact.event in SIGN_IN_EVENTS:
        SIGN_INS.labels(method, "fraud_reported" if fact.event == "fraud_reported" else fact.outcome).inc()
    if fact.event == "challenge_started":
        CHALLENGES.labels(method, "started").inc()
    elif fact.event in CHALLENGE_ENDINGS:
        CHALLENGES.labels(method, fact.reason or fact.outcome).inc()
    elif fact.event == "sign_in" and fact.outcome == "approved" and method not in (facts.PASSWORD, NO_METHOD):
        CHALLENGES.labels(method, "approved").inc()  # a second factor approved it


def count_after_commit(sessions: sessionmaker[Session]) -> None:
    """Count the facts of every session `sessions` makes when it commits; forget them on rollback."""

    def _count_committed(session: Session) -> None:
        for fact in facts.take(session):
            count(fact)

    def _forget_rolled_back(session: Session) -> None:
        facts.take(session)

    event.listen(sessions, "after_commit", _count_committed)
    event.listen(sessions, "after_rollback", _forget_rolled_back)


def count_twilio_error(code: object) -> None:
    """A refusal (Twilio's error code), `timeout` or `connection`: counted at once (no transaction)."""
    TWILIO_ERRORS.labels(str(code)).inc()


def count_twilio_account_error(code: object) -> None:
    """A Twilio answer that no person can fix (20003, 20404 on the account, not JSON…): alert on it."""
    TWILIO_ACCOUNT_ERRORS.labels(str(code)).inc()
