"""What the pages tell a person about each domain reason: one table, in plain words.

A refusal's sentence travels on the exception itself (mfa/errors.py), the same for the API and the pages.
"""
from __future__ import annotations

from mfa.errors import AccountLocked, MfaError
from models.states import AuthStatus, Reason

LOCKED = AccountLocked.message

# Every Reason, worded for the person it happened to (tests/test_pages_errors.py checks none is missing).
SENTENCES: dict[Reason, str] = {
    Reason.VERIFIED: "You verified it's you.",
    Reason.MFA_NOT_REQUIRED: "Your organisation does not need a second step when you sign in.",
    Reason.REMEMBERED_BROWSER: "You chose not to be asked for a second step on this browser for a while.",
    Reason.RECOVERY_CODE: "You used one of your recovery codes.",
    Reason.ACCESS_PASS: "You used a temporary access pass from your helpdesk.",
    # One call or text did not work; the person can try again or another way.
    Reason.NO_ANSWER: "The call was not answered.",
    Reason.BUSY: "The line was busy.",
    Reason.CALL_FAILED: "The call could not be connected.",
    Reason.HUNG_UP: "The call ended before your sign-in was verified.",
    Reason.CANCELED: "The call was cancelled.",
    Reason.NO_INPUT: "No key was pressed during the call.",
    Reason.WRONG_KEY: "A key other than the one asked for was pressed.",
    Reason.MACHINE_ANSWERED: "The call went to voicemail.",
    Reason.DELIVERY_FAILED: "We could not deliver the text message to your phone.",
    Reason.DO_NOT_CALL: "Whoever answered pressed 9 to say they did not expect this call, so we will not "
                        "call that number again.",
    Reason.NO_RESPONSE: "The request on your phone was not answered within 2 minutes.",
    # The sign-in itself ended.
    Reason.TOO_MANY_ATTEMPTS: "A wrong code was entered too many times, so this sign-in was stopped. "
                              "Sign in again to get a new code.",
    Reason.REGISTERED_MEANWHILE: "A way to verify was registered for your account while this sign-in was open. "
                                 "Sign in again to use it.",
    Reason.LOCKED: "Your account was locked while this sign-in was open, so it was stopped. " + LOCKED,
    Reason.ACCOUNT_LOCKED: LOCKED,
    Reason.FRAUD_REPORTED: "You reported this sign-in as not you, so we blocked your account. "
                           "Only your administrator can unblock it: contact them to sign in again.",
    Reason.NUMBER_MISMATCH: "The number entered on your phone did not match the one on this screen, so this "
                            "sign-in was stopped. If you did not try to sign in, tell your administrator.",
    Reason.PUSH_DENIED: "The request was denied on your phone, so this sign-in was stopped. Sign in again "
                        "if you want to continue.",
    Reason.TIMED_OUT: "This sign-in has expired: it was not finished within 10 minutes. Sign in again.",
    Reason.CANCELLED_BY_PERSON: "You cancelled this sign-in. Sign in again if you want to continue.",
    # Only ever on one call or text.
    Reason.REPLACED: "You asked for a new code or call, so the earlier one no longer works.",
    Reason.ENDED: "The sign-in ended before this call or text finished.",
    Reason.PROVIDER_UNAVAILABLE: "We cannot reach the phone service just now. Try again in a few minutes, "
                                 "or use your authenticator app.",
}
# A final status that came without a reason (rows from before reasons were kept).
STATUS_SENTENCES: dict[str, str] = {
    AuthStatus.EXPIRED: SENTENCES[Reason.TIMED_OUT],
    AuthStatus.LOCKED: LOCKED,
    AuthStatus.FRAUD_REPORTED: SENTENCES[Reason.FRAUD_REPORTED],
    AuthStatus.DENIED: "This sign-in was stopped. Sign in again.",
}
ENDED = "This sign-in has ended. Sign in again."


def sentence(reason: str | None) -> str | None:
    """The person-facing sentence for a reason, or None for no (or an unknown) reason."""
    try:
        return SENTENCES.get(Reason(reason)) if reason else None
    except ValueError:  # a reason this server no longer gives
        return None


def ending(status: str, reason: str | None) -> str:
    """Why a sign-in ended, for the page that says so."""
    return sentence(reason) or STATUS_SENTENCES.get(status, ENDED)


def attempts_left(count: int) -> str:
    return f"You can try {count} more time." if count == 1 else f"You can try {count} more times."


def refusal(exc: MfaError) -> str:
    """What a page says for a refusal: the domain's sentence (the API's too), with the tries left."""
    if exc.code == "invalid_code" and "attempts_left" in exc.extra:
        return f"{exc.message} {attempts_left(exc.extra['attempts_left'])}"
    return exc.message
