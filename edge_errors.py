"""The one table from domain refusals to HTTP statuses, read by the JSON API and the pages alike.

The code and the sentence for people travel on the exception itself (mfa/errors.py): the API
puts them in its JSON error shape, a page shows the sentence. The domain never sees this table.
"""
from __future__ import annotations

from mfa import errors

STATUS: dict[type[errors.MfaError], int] = {
    errors.BadRequest: 400,
    errors.InvalidCode: 400,
    errors.InvalidCredentials: 401,
    errors.InvalidSignature: 401,
    errors.NotFound: 404,
    errors.NotPending: 409,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.Unprocessable: 422,
    errors.AccountLocked: 423,
    errors.TooManyAttempts: 423,
    errors.RateLimited: 429,
    errors.ProviderUnavailable: 503,
}


def status_for(exc: errors.MfaError) -> int:
    """The nearest class in the table decides (AlreadyUsed is a Conflict: 409)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400
