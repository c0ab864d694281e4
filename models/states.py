"""Every state a sign-in or a challenge can be in, and every reason one ends.

StrEnums stored as their plain strings: the columns stay `String`, a member compares
equal to its value, and the API shows the same words (docs/api.md).
"""
from __future__ import annotations

from enum import StrEnum


class AuthStatus(StrEnum):
    """Where one sign-in (an `Authentication`) stands; the API's `status`."""

    MFA_REQUIRED = "mfa_required"
    REGISTRATION_REQUIRED = "registration_required"
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    FRAUD_REPORTED = "fraud_reported"
    EXPIRED = "expired"
    LOCKED = "locked"


class ChallengeStatus(StrEnum):
    """Where one call or text (a `Challenge`) stands."""

    SENDING = "sending"  # reserved and committed, not yet handed to the provider
    PENDING = "pending"
    UNKNOWN = "unknown"  # the provider's answer was lost: it may have gone out
    REPLACED = "replaced"  # a newer challenge for the same sign-in took over
    FAILED = "failed"  # nothing went out, or the text was not delivered
    ENDED = "ended"  # the sign-in ended (or moved on) without this challenge
    APPROVED = "approved"
    DENIED = "denied"
    FRAUD = "fraud"  # 0# pressed on the call


class Reason(StrEnum):
    """Why a sign-in was approved, denied or ended; the API's `reason` (docs/api.md)."""

    # Approvals.
    VERIFIED = "verified"
    MFA_NOT_REQUIRED = "mfa_not_required"
    REMEMBERED_BROWSER = "remembered_browser"  # the page sign-in came from a browser the person had remembered
    RECOVERY_CODE = "recovery_code"  # one of the person's saved recovery codes (mfa/recovery_codes.py)
    ACCESS_PASS = "access_pass"  # a temporary access pass from the helpdesk (mfa/access_passes.py)
    # Denials that end one call or text, not the sign-in (RETRYABLE_DENIALS).
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CALL_FAILED = "call_failed"
    HUNG_UP = "hung_up"
    CANCELED = "canceled"
    NO_INPUT = "no_input"
    WRONG_KEY = "wrong_key"
    MACHINE_ANSWERED = "machine_answered"
    DELIVERY_FAILED = "delivery_failed"
    DO_NOT_CALL = "do_not_call"
    NO_RESPONSE = "no_response"  # a push request nobody answered on the phone within its 2 minutes
    # Endings of the sign-in itself.
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    REGISTERED_MEANWHILE = "registered_meanwhile"
    LOCKED = "locked"  # the person was blocked while the call rang
    ACCOUNT_LOCKED = "account_locked"  # with status `locked`
    FRAUD_REPORTED = "fraud_reported"  # with status `fraud_reported`, or `locked` for the person's other sign-ins
    NUMBER_MISMATCH = "number_mismatch"  # a wrong number keyed twice on a number-matched call, or once on a push
    PUSH_DENIED = "push_denied"  # "Deny" tapped on the phone's app
    TIMED_OUT = "timed_out"  # with status `expired`
    # The person pressed Cancel, or signed out, while it was under way: final, unlike the call's `canceled`.
    CANCELLED_BY_PERSON = "cancelled_by_person"
    # Only ever on a challenge, never on a sign-in.
    REPLACED = "replaced"
    ENDED = "ended"
    PROVIDER_UNAVAILABLE = "provider_unavailable"


# Statuses a sign-in can still move on from; everything else is final.
OPEN_STATUSES = (AuthStatus.MFA_REQUIRED, AuthStatus.REGISTRATION_REQUIRED, AuthStatus.PENDING)
FINAL_STATUSES = tuple(s for s in AuthStatus if s not in OPEN_STATUSES)
# A denial for one of these reasons ends that challenge, not the sign-in: the
# person may try again, or another method, until the sign-in expires.
RETRYABLE_DENIALS = (
    Reason.NO_ANSWER, Reason.BUSY, Reason.CALL_FAILED, Reason.NO_INPUT, Reason.WRONG_KEY, Reason.DELIVERY_FAILED,
    Reason.HUNG_UP, Reason.MACHINE_ANSWERED, Reason.CANCELED, Reason.DO_NOT_CALL, Reason.NO_RESPONSE,
)
APPROVALS = (Reason.VERIFIED, Reason.MFA_NOT_REQUIRED, Reason.REMEMBERED_BROWSER, Reason.RECOVERY_CODE,
             Reason.ACCESS_PASS)
CHALLENGE_ONLY = (Reason.REPLACED, Reason.ENDED, Reason.PROVIDER_UNAVAILABLE)
# Reasons that deny or end a sign-in: each has a sentence for people and a line in docs/api.md.
DENIALS = tuple(r for r in Reason if r not in APPROVALS and r not in CHALLENGE_ONLY)
# Challenges a newer one replaces: they may still go out, or are out.
SUPERSEDED = (ChallengeStatus.PENDING, ChallengeStatus.UNKNOWN, ChallengeStatus.SENDING)
