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
    type: Mapped[str] = mapped_column(String(8))
