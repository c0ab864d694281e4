from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, new_id


class DoNotCall(Base):
    """A number whose answerer pressed 9 ("I don't know why I'm getting this call").

    No verification call goes to it again until its owner proves it by text.
    """

    __tablename__ = "do_not_call"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    phone_lookup: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
