"""Counters for operators (Prometheus): sign-ins and challenges by method and outcome, Twilio errors.

Fed by the audit trail (mfa.audit.record) and the Twilio provider. Counts wait in the
session until it commits, so a use case that rolls back counts nothing, and a refusal
(wrong code, locked account), which commits its bookkeeping, is counted.

Labels stay few and fixed: method is a type (password, totp, sms, voice), never a label
or a number. Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR before
start-up; prometheus_client then keeps these values in files that /metrics adds up.
"""
from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session

from models.states import Reason

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

# Reasons only a phone call can end with (mfa/calls.py); the rest of the denials are texts.
CALL_REASONS = frozenset({
    Reason.BUSY, Reason.NO_ANSWER, Reason.CALL_FAILED, Reason.CANCELED, Reason.HUNG_UP, Reason.MACHINE_ANSWERED,
    Reason.NO_INPUT, Reason.WRONG_KEY, Reason.DO_NOT_CALL, Reason.FRAUD_REPORTED,
})
PENDING_KEY = "mfa_metrics_pending"


def count_audit_event(db: Session, event_name: str, outcome: str, method_label: str | None,
                      reason: str | None, detail: str | None) -> None:
    """Queue the counters for one audit event; they are added when `db` commits."""
    pending = db.info.setdefault(PENDING_KEY, [])
    pending.append((AUDIT_EVENTS, (event_name, outcome)))
    method = method_type(event_name, method_label, reason, detail)
    if event_name in ("sign_in", "password_checked", "fraud_reported"):
        pending.append((SIGN_INS, (method, outcome if event_name != "fraud_reported" else "fraud_reported")))
    if event_name == "challenge_started":
        pending.append((CHALLENGES, (method, "started")))
    elif event_name in ("challenge_failed", "code_check", "do_not_call", "fraud_reported"):
        pending.append((CHALLENGES, (method, reason or outcome)))
    elif event_name == "sign_in" and outcome == "approved" and method_label:
        pending.append((CHALLENGES, (method, "approved")))


def count_twilio_error(code: object) -> None:
    """A refusal (Twilio's error code), `timeout` or `connection`: counted at once (no transaction)."""
    TWILIO_ERRORS.labels(str(code)).inc()


def count_twilio_account_error(code: object) -> None:
    """A Twilio answer that no person can fix (20003, 20404 on the account, not JSON…): alert on it."""
    TWILIO_ACCOUNT_ERRORS.labels(str(code)).inc()


def method_type(event_name: str, label: str | None, reason: str | None, detail: str | None) -> str:
    """The method's type from what the audit trail is given (callers pass masked labels, not types).

    Phone labels are masked numbers (`+44 •••• ••0123`), the same for a phone's text and call
    methods: the reason or detail tells them apart. tests/test_ops.py pins this for each flow.
    """
    from mfa.methods import TOTP_LABEL  # imported late: mfa.methods imports the audit trail

    if event_name == "code_check":
        return "code"  # a typed code that matched nothing: a texted code or the app's
    if event_name in ("fraud_reported", "do_not_call") or reason in CALL_REASONS:
        return "voice"
    if reason == Reason.DELIVERY_FAILED:
        return "sms"
    if detail and detail.startswith("type="):
        return detail[len("type="):].split()[0]
    if label is None:
        return "none" if outcome_is_expiry(event_name, reason) else "password"
    if label == TOTP_LABEL:
        return "totp"
    if label.startswith("+"):
        return "voice" if detail and "call" in detail else "sms"
    return "other"


def outcome_is_expiry(event_name: str, reason: str | None) -> bool:
    return event_name == "sign_in" and reason == Reason.TIMED_OUT


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for counter, labels in session.info.pop(PENDING_KEY, ()):
        counter.labels(*labels).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
