from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class BrowserSession(Base):
    """A browser's session, kept on the server so that signing out ends it everywhere.

    The cookie holds a random id; only its SHA-256 is stored here.
    """

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Set once the person has completed sign-in in this browser; NULL while signing in.
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    data: Mapped[str] = mapped_column(Text)  # JSON: the flow under way, CSRF token, flashes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    signed_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
