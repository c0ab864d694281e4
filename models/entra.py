"""Microsoft Entra external MFA: who an Entra user is here, what Entra asked for, and our signing keys."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, new_id

if TYPE_CHECKING:
    from models.authentication import Authentication
    from models.user import User


class EntraLink(Base):
    """The Entra user (tenant id and object id) that signs in as one person here."""

    __tablename__ = "entra_links"
    __table_args__ = (UniqueConstraint("tenant_id", "object_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    object_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class EntraRequest(Base):
    """One authorization request from Entra, and the sign-in that answers it.

    Everything the answer needs (state, nonce, where to post it, what Entra accepts) stays here on the
    server, never in the browser; the nonce is unique, so a replayed request starts nothing."""

    __tablename__ = "entra_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    authentication_id: Mapped[str] = mapped_column(
        ForeignKey("authentications.id", ondelete="CASCADE"), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    object_id: Mapped[str] = mapped_column(String(36))
    subject: Mapped[str] = mapped_column(String(128))  # the hint's `sub`, echoed in our id_token
    nonce: Mapped[str] = mapped_column(String(255), unique=True)
    hint_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the id_token_hint: used once
    state: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(128))
    acr: Mapped[str] = mapped_column(String(48))  # the one we will answer with (chosen from those requested)
    amr_allowed: Mapped[str] = mapped_column(String(255))  # space-separated amr values Entra accepts; "*": any
    client_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The person proved their password here for an Entra user not yet linked: approving links them.
    links_on_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    authentication: Mapped[Authentication] = relationship()

    def allows(self, amr: str) -> bool:
        return self.amr_allowed == "*" or amr in self.amr_allowed.split()


class EntraSigningKey(Base):
    """An RSA key our id_tokens are signed with, published in the JWKS with a self-signed certificate.

    Rotation: a new key is `published` (in the JWKS, not signing) until Entra's cached copy of the JWKS
    has turned over, then `signing` (the old signing key goes back to `published`), then `retired`."""

    __tablename__ = "entra_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[bytes] = mapped_column(LargeBinary)  # PEM, encrypted with DATA_KEY (mfa/vault.py)
    certificate: Mapped[str] = mapped_column(Text)  # PEM, public
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
