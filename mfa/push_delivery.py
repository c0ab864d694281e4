"""How a push request reaches a phone: one small interface, so another channel (APNs or FCM for a
native app) can take the place of Web Push. Delivery is only a nudge: devices always fetch their
requests too (the web app polls while open), so a failed delivery changes nothing on the server.
"""
from __future__ import annotations

from typing import Protocol

# What send() found, for the log and for forgetting a subscription the push service has dropped.
SENT, GONE, FAILED, NOT_ALLOWED = "sent", "gone", "failed", "not_allowed"


class PushSender(Protocol):
    @property
    def public_key(self) -> str | None:
        """The applicationServerKey devices subscribe with (base64url), or None: push is off, poll only."""

    def accepts_endpoint(self, endpoint: str) -> bool:
        """Whether the server may post to this push-service URL (an allow-list: no server-side request forgery)."""

    def send(self, subscription: dict[str, object], payload: dict[str, object]) -> str:
        """Deliver `payload` (JSON-able) to one subscription; SENT, GONE, FAILED or NOT_ALLOWED. Never raises."""


class NoPush:
    """No Web Push keys configured: devices learn of requests by polling."""

    public_key = None

    def accepts_endpoint(self, endpoint: str) -> bool:
        return False

    def send(self, subscription: dict[str, object], payload: dict[str, object]) -> str:
        return NOT_ALLOWED
