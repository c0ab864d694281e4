"""Delivering a text on the simulated network, with Twilio's status callbacks (NOTES.md 3.1).

Default path: sent, then delivered. `Network.set_sms_outcome` makes a handset end "failed"
(never left Twilio, no "sent" callback) or "undelivered" (sent, then the carrier gave up),
each with an ErrorCode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .calls import API_VERSION
from .records import SimMessage, utcnow

if TYPE_CHECKING:
    from .network import Network

SERVICE_SENDER = "+15005550006"  # the number a messaging service "picks" from its pool
DEFAULT_ERROR_CODES = {"undelivered": 30003, "failed": 30008}
ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}


class MessageDelivery:
    def __init__(self, net: Network):
        self.net = net

    def deliver(self, message: SimMessage) -> None:
        outcome, error_code = self.net.sms_outcome_of(message.to)
        with self.net.lock:
            if message.from_ is None:
                message.from_ = SERVICE_SENDER
        if outcome == "failed":
            self._advance(message, "failed", error_code)
            return
        self._advance(message, "sent")
        if outcome == "undelivered":
            self._advance(message, "undelivered", error_code)
        else:
            self._advance(message, "delivered")

    def _advance(self, message: SimMessage, status: str, error_code: int | None = None) -> None:
        with self.net.lock:
            message.status = status
            message.updated_at = utcnow()
            if status == "sent":
                message.sent_at = message.updated_at
            if error_code:
                message.error_code = error_code
                message.error_message = ERROR_MESSAGES.get(error_code, "Delivery failed")
            self.net.touch(message)
        if message.status_callback:
            reply = self.net.webhooks.send("POST", message.status_callback,
                                           self._params(message, status))
            with self.net.lock:
                message.callbacks.append((status, reply.status))

    def _params(self, message: SimMessage, status: str) -> dict[str, str]:
        params = {
            "AccountSid": message.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_ or "",
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if status in ("failed", "undelivered") and message.error_code:
            params["ErrorCode"] = str(message.error_code)
        return params
