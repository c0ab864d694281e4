"""The domain's exceptions. Each carries a stable `code` and a message for people.

The HTTP status for each class lives in one table at the edge (edge_errors.py), for API and pages.
A refusal is raised only after its own bookkeeping (attempt counters, audit
rows) is done, and that bookkeeping is committed with it: see unit_of_work.
"""
from __future__ import annotations

import math
from typing import Any


class MfaError(Exception):
    code = "error"
    message = "Something went wrong."

    def __init__(self, message: str | None = None, *, code: str | None = None, **extra: Any):
        self.message = message or self.message
        self.code = code or self.code
        self.extra = extra
        super().__init__(self.message)


class BadRequest(MfaError):
    code = "bad_request"
    message = "The request is not valid."


class InvalidCredentials(MfaError):
    code = "invalid_credentials"
    message = "The username or password is incorrect."


class AccountLocked(MfaError):
    code = "locked"
    # Said before the password is checked, so it cannot say which (mfa/lockout.py BASE_DURATION: the
    # first lockout; repeated ones last longer). Said only where the lockout applies (smart lockout).
    message = ("Your account is locked. If a wrong password or code was entered too many times, try again in "
               "15 minutes (longer if it happens again), or sign in from a place you have signed in from "
               "before. If you reported a sign-in that was not you, only your administrator can unlock it.")


class InvalidSignature(MfaError):
    """A device request that is unsigned, wrongly signed, stale, replayed, or from a removed device."""

    code = "invalid_signature"
    message = "This request is not signed by a device set up for sign-in, or it is too old."


class Gone(MfaError):
    code = "gone"
    message = "This is no longer available."


class NotFound(MfaError):
    code = "not_found"
    message = "Not found."


class InvalidCode(MfaError):
    code = "invalid_code"
    # One vague message for wrong, expired and replayed codes; the audit log has the reason.
    message = "That code did not work: it may be mistyped, used already or expired."


class TooManyAttempts(MfaError):
    code = "too_many_attempts"
    message = "Too many wrong codes. Start signing in again."


class NotPending(MfaError):
    code = "not_pending"
    message = "This sign-in is not waiting for that step."


class Unprocessable(MfaError):
    """Well-formed, but the request cannot be carried out (e.g. an invalid phone number)."""

    code = "unprocessable"
    message = "The request cannot be carried out."


class Conflict(MfaError):
    code = "conflict"
    message = "That already exists."


class RateLimited(MfaError):
    code = "rate_limited"
    message = "Too many requests. Wait a moment and try again."

    def __init__(self, retry_after: float, message: str | None = None):
        super().__init__(message, retry_after=whole_seconds(retry_after))


def whole_seconds(seconds: float) -> int:
    """A wait rounded up, never 0: told to wait 29 when 29.4 remain, a caller would be refused again."""
    return max(1, math.ceil(seconds))


class ProviderUnavailable(MfaError):
    code = "provider_unavailable"
    message = "The telephone service cannot be reached just now. Try again shortly."
