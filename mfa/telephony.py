"""What the domain needs from a telephone provider, and how it can fail.

The real implementation is ivr/provider.py (Twilio through its SDK); the
domain sees only this interface and these errors.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mfa.errors import ProviderUnavailable, Unprocessable

if TYPE_CHECKING:
    from models import Challenge


class Telephony(Protocol):
    def send_code_sms(self, to: str, code: str, language: str) -> str:
        """Text a one-time code; returns the provider's message id (MessageSid)."""

    def place_verification_call(self, to: str, challenge_id: str) -> str:
        """Ring `to`; the call flow runs through webhooks. Returns the CallSid."""

    def end_call(self, call_sid: str) -> None:
        """Hang up or cancel a call that is no longer needed."""


# Provider error codes that will not change on a retry, and what they mean to people.
PERMANENT_ERRORS: dict[int | None, tuple[str, str]] = {
    21211: ("invalid_number", "That phone number is not valid."),
    21217: ("invalid_number", "That phone number is not valid."),
    21614: ("sms_needs_mobile", "That number cannot receive text messages. Use a mobile number, or choose a call."),
    21408: ("region_not_enabled", "This service cannot reach numbers in that country."),
    21215: ("region_not_enabled", "This service cannot reach numbers in that country."),
    21610: ("opted_out", "That number has asked not to receive our texts (it replied STOP). "
                         "Reply START to allow them again, or choose another method."),
    21612: ("unreachable_number", "That number cannot be reached from this service."),
    21214: ("unreachable_number", "That number cannot be reached from this service."),
    21216: ("unreachable_number", "That number cannot be reached from this service."),
}


class TelephonyRejected(Unprocessable):
    """The provider refused the request for a reason a retry will not fix."""

    def __init__(self, provider_code: int | None, provider_message: str = ""):
        code, message = PERMANENT_ERRORS.get(
            provider_code, ("provider_rejected", "The telephone service refused that request.")
        )
        super().__init__(message, code=code)
        self.provider_code = provider_code
        self.provider_message = provider_message


class DeliveryUnknown(ProviderUnavailable):
    """The request may have reached the provider (a 5xx, a read time-out, a broken answer).

    Never retried: a second call or text is worse than asking the person to retry.
    The challenge is kept as "unknown" so a late webhook or a status callback still finds it.
    """

    challenge: Challenge  # set by mfa.challenges.send before the error leaves the domain

    message = ("We could not confirm that the call or text went out. If nothing arrives in a "
               "minute, ask for another.")
