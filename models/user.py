from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id

if TYPE_CHECKING:
    from models.method import Method

ROLES = ("admin", "user")
# The languages calls and texts speak, with their names on the pages: the one list (the prompt
# catalogue, the SMS texts, the forms and the command line all take it from here).
LANGUAGE_NAMES = {"en-GB": "English", "cy-GB": "Cymraeg (Welsh)"}
LANGUAGES = tuple(LANGUAGE_NAMES)
DEFAULT_LANGUAGE = LANGUAGES[0]


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    region: Mapped[str] = mapped_column(String(64), default="england")
    hybrid: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8), default=DEFAULT_LANGUAGE)
    # Consecutive failures (password or code); reset by a completed sign-in.
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set by a "0#" fraud report; only `users unlock` clears it.
    fraud_blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Smart lockout (mfa/lockout.py): failures from sources the person never completed a sign-in
    # from count apart and lock only those sources; app passwords count apart from sign-ins.
    unfamiliar_failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unfamiliar_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    app_password_failed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    app_password_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Lockouts since the last completed sign-in: each lockout lasts longer than the one before.
    lockouts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    methods: Mapped[list[Method]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="Method.created_at"
    )

    def is_locked(self, now: datetime) -> bool:
        return self.fraud_blocked_at is not None or (
            self.locked_until is not None and self.locked_until > now
        )

    def verified_methods(self) -> list[Method]:
        return [m for m in self.methods if m.verified_at is not None]


class AppPassword(Base):
    __tablename__ = "app_passwords"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of a server-generated 75-bit secret: a fast hash is enough at that entropy.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
