"""What the domain needs from a telephone provider, and how it can fail.

The real implementation is ivr/provider.py (Twilio through its SDK); the
domain sees only this interface and these errors.
"""
from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from mfa.errors import ProviderUnavailable, Unprocessable

if TYPE_CHECKING:
    from models import Challenge


class Telephony(Protocol):
    def send_code_sms(self, to: str, code: str, language: str) -> str:
        """Text a one-time code; returns the provider's message id (MessageSid)."""

    def send_notice_sms(self, to: str, change: str, language: str, last_digits: str | None) -> str:
        """Text a change notification (mfa/change_notices.py: `change` names what changed; at most
        the changed phone's last digits). Returns the MessageSid."""

    def place_verification_call(self, to: str, challenge_id: str) -> str:
        """Ring `to`; the call flow runs through webhooks. Returns the CallSid."""

    def end_call(self, call_sid: str) -> None:
        """Hang up or cancel a call that is no longer needed."""


class Refusal(StrEnum):
    """Why the provider refused a number for good: a retry will not change it.

    ivr/provider.py translates the provider's own error numbers into these.
    """

    INVALID_NUMBER = "invalid_number"
    SMS_NEEDS_MOBILE = "sms_needs_mobile"
    REGION_NOT_ENABLED = "region_not_enabled"
    OPTED_OUT = "opted_out"
    UNREACHABLE_NUMBER = "unreachable_number"
    PROVIDER_REJECTED = "provider_rejected"  # any other refusal


# What each refusal means to people.
REFUSAL_MESSAGES: dict[Refusal, str] = {
    Refusal.INVALID_NUMBER: "That phone number is not valid.",
    Refusal.SMS_NEEDS_MOBILE: "That number cannot receive text messages. Use a mobile number, or choose a call.",
    Refusal.REGION_NOT_ENABLED: "This service cannot reach numbers in that country.",
    Refusal.OPTED_OUT: "That number has asked not to receive our texts (it replied STOP). "
                       "Reply START to allow them again, or choose another method.",
    Refusal.UNREACHABLE_NUMBER: "That number cannot be reached from this service.",
    Refusal.PROVIDER_REJECTED: "The telephone service refused that request.",
}


class TelephonyRejected(Unprocessable):
    """The provider refused the request for a reason a retry will not fix."""

    def __init__(self, reason: Refusal = Refusal.PROVIDER_REJECTED, provider_message: str = ""):
        super().__init__(REFUSAL_MESSAGES[reason], code=reason.value)
        self.reason = reason
        self.provider_message = provider_message  # may quote the full number: never logged


class DeliveryUnknown(ProviderUnavailable):
    """The request may have reached the provider (a 5xx, a read time-out, a broken answer).

    Never retried: a second call or text is worse than asking the person to retry.
    The challenge is kept as "unknown" so a late webhook or a status callback still finds it.
    """

    challenge: Challenge  # set by mfa.challenges.send before the error leaves the domain

    message = ("We could not confirm that the call or text went out. If nothing arrives in a "
               "minute, ask for another.")
