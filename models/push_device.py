from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id
from models.method import Method


class PushDevice(Base):
    """A phone's web app (or the reference authenticator) that approves push sign-ins.

    One per `push` method. Until enrolled it holds only the keyed hash of its single-use
    enrolment token; the device then sends its public key (the private key never leaves it)
    and, when notifications are allowed, its Web Push subscription (encrypted: the endpoint
    is a capability URL).
    """

    __tablename__ = "push_devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    method_id: Mapped[str] = mapped_column(ForeignKey("methods.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The sign-in (or security-info change) that made the set-up link: only it may finish the set-up.
    authentication_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str | None] = mapped_column(String(60), nullable=True)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # 65-byte P-256 point
    subscription_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    enrolment_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    enrolment_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    method: Mapped[Method] = relationship()


class DeviceNonce(Base):
    """A signed device request's nonce, kept while its timestamp could still be accepted:
    the same signed request sent twice is refused (a replay)."""

    __tablename__ = "device_nonces"

    device_id: Mapped[str] = mapped_column(ForeignKey("push_devices.id", ondelete="CASCADE"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
