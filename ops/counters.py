"""Counters for operators (Prometheus): sign-ins and challenges by method and outcome, Twilio errors.

The domain states what happened as facts (mfa.facts.Outcome, one per audit event, naming
the method's type); count_after_commit hooks the application's own session factory so
that they are counted once their session commits and dropped when it rolls back. Sessions
made anywhere else in the process (a tool's, a test's) count nothing.

Labels stay few and fixed: method is a type (password, code, totp, sms, voice, push; `none`
when no method had a part, as for a sign-in that ran out of time), never a label or a number.
The label sets known in advance are made at import, at 0, so every series is there (with its
HELP and TYPE) in the first scrape, before any event: an alert's rate() needs a 0 to rise from.
Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR before start-up;
prometheus_client then keeps these values in files that /metrics adds up. Every series is
listed, with what it means, in docs/monitoring.md.
"""
from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, disable_created_metrics
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from mfa import facts
from mfa.method_types import REGISTRY, types_where
from mfa.facts import Outcome

# No *_created gauge beside every series: multiprocess mode (gunicorn) never has them, and they
# would double what a single process shows for no alert's benefit.
disable_created_metrics()

SIGN_INS = Counter(
    "mfa_sign_ins", "Sign-ins reaching a decision, by the method that decided it and the outcome.",
    ["method", "outcome"],
)
CHALLENGES = Counter(
    "mfa_challenges", "Second-factor challenges and code checks, by method and outcome.",
    ["method", "outcome"],
)
AUDIT_EVENTS = Counter("mfa_audit_events", "Every audit event, by event and outcome.", ["event", "outcome"])
SIGN_IN_REFUSALS = Counter(
    "mfa_sign_in_refusals",
    "Sign-ins refused before the password was checked: reason locked (lockout) or fraud_block (fraud report).",
    ["reason"],
)
LOCKOUTS = Counter(
    "mfa_lockouts", "Accounts locked by consecutive failures: kind sign_in or app_password.", ["kind"],
)
FRAUD_BLOCKS = Counter(
    "mfa_fraud_blocks",
    "Sign-ins, app-password checks and Entra requests refused because the person is blocked after a fraud report.",
)
NUMBER_MISMATCHES = Counter(
    "mfa_number_mismatches", "Wrong two-digit numbers keyed on a call or chosen on the phone app, by method.",
    ["method"],
)
PUSH_DENIALS = Counter("mfa_push_denials", "Sign-in requests a person denied on the phone app.")
CHALLENGES_UNHEARD = Counter(
    "mfa_challenges_unheard",
    "Calls and texts Twilio never reported back on (no status callback, no answer webhook) by the time they ended.",
    ["method"],
)
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "mfa_webhook_signature_failures",
    "Twilio webhooks refused (403): X-Twilio-Signature missing or wrong, or signed for another AccountSid.",
)
TWILIO_REQUESTS = Counter(
    "mfa_twilio_requests",
    "Requests to Twilio's REST API, one per call placed, text sent or call ended, retries included in it: "
    "kind call, sms or end_call; outcome ok or error.",
    ["kind", "outcome"],
)
TWILIO_ATTEMPTS = Counter(
    "mfa_twilio_attempts", "HTTP attempts at Twilio's REST API, every retry counted: kind and outcome (ok, error).",
    ["kind", "outcome"],
)
TWILIO_ERRORS = Counter(
    "mfa_twilio_errors", "Failed HTTP attempts at Twilio's REST API (each retry counts), by Twilio error code.",
    ["code"],
)
TWILIO_ACCOUNT_ERRORS = Counter(
    "mfa_twilio_account_errors",
    "Twilio refusals that are the operator's to fix (credentials, account, sender, API URL), by code.",
    ["code"],
)

NO_METHOD = "none"
SECOND_FACTORS = ("totp", "sms", "voice", "push")
SIGN_IN_EVENTS = frozenset({"sign_in", "password_checked", "fraud_reported"})
# Events that end a challenge (or a typed code's check): counted by their reason.
CHALLENGE_ENDINGS = frozenset({"challenge_failed", "code_check", "do_not_call", "fraud_reported"})
LOCKOUT_EVENTS = {"account_locked": "sign_in", "app_passwords_locked": "app_password"}
# Refusals of a blocked person, wherever they tried: (event, outcome) with reason "fraud_block".
BLOCKED_REFUSALS = frozenset({("sign_in", "refused"), ("app_password_check", "failed"), ("entra_request", "declined")})
REFUSAL_REASONS = ("locked", "fraud_block")
TWILIO_KINDS = ("call", "sms", "end_call")


def _declare_known_label_sets() -> None:
    """Every combination that can happen without an unusual path, at 0 (docs/monitoring.md)."""
    for outcome in ("approved", "failed", "refused", "mfa_required", "registration_required"):
        SIGN_INS.labels(facts.PASSWORD, outcome)
    for method in SECOND_FACTORS:
        for outcome in ("approved", "denied"):
            SIGN_INS.labels(method, outcome)
        for outcome in ("started", "approved"):
            CHALLENGES.labels(method, outcome)
    for method in types_where(matches_numbers=True):
        SIGN_INS.labels(method, "fraud_reported")
        CHALLENGES.labels(method, "fraud_reported")
        NUMBER_MISMATCHES.labels(method)
    for outcome in ("expired", "cancelled"):
        SIGN_INS.labels(NO_METHOD, outcome)
    CHALLENGES.labels(facts.TYPED_CODE, "wrong_code")
    for reason in ("no_answer", "busy", "do_not_call"):
        CHALLENGES.labels("voice", reason)
    CHALLENGES.labels("sms", "delivery_failed")
    for kind in LOCKOUT_EVENTS.values():
        LOCKOUTS.labels(kind)
    for reason in REFUSAL_REASONS:
        SIGN_IN_REFUSALS.labels(reason)
    for method in (t.name for t in REGISTRY.values() if t.twilio_sends_as):
        CHALLENGES_UNHEARD.labels(method)
    for kind in TWILIO_KINDS:
        for outcome in ("ok", "error"):
            TWILIO_REQUESTS.labels(kind, outcome)
            TWILIO_ATTEMPTS.labels(kind, outcome)


_declare_known_label_sets()


def count(fact: Outcome) -> None:
    if fact.event == facts.CHALLENGE_UNHEARD:  # no audit event: a fact about Twilio's silence
        CHALLENGES_UNHEARD.labels(fact.method_type or NO_METHOD).inc()
        return
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
    _count_security_signals(fact, method)


def _count_security_signals(fact: Outcome, method: str) -> None:
    """The series an operator alerts on, each its own, so no query has to pick them out of the others."""
    if fact.event == "sign_in" and fact.outcome == "refused":
        SIGN_IN_REFUSALS.labels(fact.reason or "other").inc()
    if fact.reason == "fraud_block" and (fact.event, fact.outcome) in BLOCKED_REFUSALS:
        FRAUD_BLOCKS.inc()
    if fact.event in LOCKOUT_EVENTS:
        LOCKOUTS.labels(LOCKOUT_EVENTS[fact.event]).inc()
    elif fact.event == "number_mismatch":
        NUMBER_MISMATCHES.labels(method).inc()
    elif fact.event == "challenge_failed" and fact.reason == "push_denied":
        PUSH_DENIALS.inc()


def count_after_commit(sessions: sessionmaker[Session]) -> None:
    """Count the facts of every session `sessions` makes when it commits; forget them on rollback."""

    def _count_committed(session: Session) -> None:
        for fact in facts.take(session):
            count(fact)

    def _forget_rolled_back(session: Session) -> None:
        facts.take(session)

    event.listen(sessions, "after_commit", _count_committed)
    event.listen(sessions, "after_rollback", _forget_rolled_back)


def count_twilio_attempt(kind: str, ok: bool) -> None:
    """One HTTP attempt at Twilio (retries are attempts too)."""
    TWILIO_ATTEMPTS.labels(kind, "ok" if ok else "error").inc()


def count_twilio_request(kind: str, ok: bool) -> None:
    """One logical request (a call placed, a text sent, a call ended), however many attempts it took."""
    TWILIO_REQUESTS.labels(kind, "ok" if ok else "error").inc()


def count_twilio_error(code: object) -> None:
    """A refusal (Twilio's error code), `timeout` or `connection`: counted at once (no transaction)."""
    TWILIO_ERRORS.labels(str(code)).inc()


def count_twilio_account_error(code: object) -> None:
    """A Twilio answer that no person can fix (20003, 20404 on the account, not JSON…): alert on it."""
    TWILIO_ACCOUNT_ERRORS.labels(str(code)).inc()


def declare_account_error_codes(codes: Iterable[object]) -> None:
    """The account errors ivr/provider.py knows, at 0 (the code label is open: others appear when they happen)."""
    for code in codes:
        TWILIO_ACCOUNT_ERRORS.labels(str(code))


def count_webhook_signature_failure() -> None:
    """A webhook refused with 403: forged, mis-signed (PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN) or another account's."""
    WEBHOOK_SIGNATURE_FAILURES.inc()
