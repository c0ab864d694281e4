from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class SendRecord(Base):
    """Every text or call sent, kept apart from challenges (which come and go) so that
    caps per person and per number cannot be escaped by starting new sign-ins."""

    __tablename__ = "send_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    phone_lookup: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(8))  # voice, sms, or notice (a change notification)
    # The challenge that made it (None for notices): a call's outcome is written back here.
    challenge_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # Keyed hash of the number without its last three digits: bursts of new numbers in one range.
    range_lookup: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # For calls: "unanswered" when nobody answered (no answer, busy, voicemail); None otherwise.
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
