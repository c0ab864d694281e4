from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id
from models.states import OPEN_STATUSES, RETRYABLE_DENIALS, AuthStatus, ChallengeStatus

if TYPE_CHECKING:
    from models.method import Method
    from models.user import User


class Authentication(Base):
    """One sign-in attempt, from a correct password to its final outcome."""

    __tablename__ = "authentications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    # True when this sign-in began as registration_required: finishing it registers a method.
    registering: Mapped[bool] = mapped_column(Boolean, default=False)
    # "sign_in" (a password was checked) or "change" (security info for a signed-in person).
    purpose: Mapped[str] = mapped_column(String(16), default="sign_in")
    reason: Mapped[str | None] = mapped_column(String(48), nullable=True)
    # Wrong codes entered during this sign-in (any method).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Texts and calls sent for this sign-in, for the resend spacing and cap.
    sends: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The relying application (API key) that created it; None for the server's own pages.
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the approval was turned into a browser session: that happens once only.
    exchanged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The method type whose second factor approved it (a call, text, app code or push); None otherwise.
    approved_with: Mapped[str | None] = mapped_column(String(8), nullable=True)

    user: Mapped[User] = relationship()

    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def can_retry(self) -> bool:
        return self.status == AuthStatus.DENIED and self.reason in RETRYABLE_DENIALS

    def has_expired(self, now: datetime) -> bool:
        """Overdue and not yet final (a failed call or text leaves a sign-in able to go on until then)."""
        return (self.is_open() or self.can_retry()) and now >= self.expires_at


class Challenge(Base):
    """A call, text or push sent for one authentication, with its own expiry and tries.

    Keyed by the provider's id (CallSid, MessageSid) so any worker can take a
    webhook for it: no call state lives in process memory.
    """

    __tablename__ = "challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    authentication_id: Mapped[str] = mapped_column(
        ForeignKey("authentications.id", ondelete="CASCADE"), index=True
    )
    method_id: Mapped[str] = mapped_column(ForeignKey("methods.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(8))
    # "sign_in", or "registration" when completing it verifies a new method.
    purpose: Mapped[str] = mapped_column(String(16), default="sign_in")
    status: Mapped[str] = mapped_column(String(16), default=ChallengeStatus.PENDING.value)
    reason: Mapped[str | None] = mapped_column(String(48), nullable=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Where a phone call's flow has got to (prompts repeated, wrong keys so far); for a text, the
    # first delivery report Twilio sent. None while pending: Twilio has not reported (mfa/unheard.py).
    call_step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    call_retries: Mapped[int] = mapped_column(Integer, default=0)
    number_match: Mapped[str | None] = mapped_column(String(4), nullable=True)
    # When a person answered it on their phone (a push approved or denied): the fatigue rules count from it.
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    method: Mapped[Method] = relationship()
    authentication: Mapped[Authentication] = relationship()

    def is_pending(self, now: datetime) -> bool:
        return self.status == ChallengeStatus.PENDING and now < self.expires_at
