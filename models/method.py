from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id

if TYPE_CHECKING:
    from models.user import User

METHOD_TYPES = ("voice", "sms", "totp", "push")
PHONE_KINDS = ("mobile", "office", "alternate")


class Method(Base):
    """One way a person can complete the second factor.

    A phone used both for texts and calls is two rows (`sms` and `voice`) that
    share the number, so each can be chosen, listed and made default alone.
    """

    __tablename__ = "methods"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # E.164 encrypted with DATA_KEY; the keyed hash finds a number without decrypting.
    phone_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    phone_lookup: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    label: Mapped[str] = mapped_column(String(64))  # masked, safe to show and log
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Highest TOTP time step accepted: a code's step may be used once only.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="methods")

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None
