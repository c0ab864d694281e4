from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id


class RememberedBrowser(Base):
    """A browser where its person chose "don't ask again for N days" after a second factor.

    The browser holds a random token in a cookie; only its keyed hash is stored here, so a copy
    of this table lets nobody skip the second step. Deleting the row forgets the browser.
    """

    __tablename__ = "remembered_browsers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))  # "Firefox on Windows": for the person's list
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
