"""Declarative base and the column types every table shares."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import TypeGuard

from sqlalchemy import DateTime, Dialect, MetaData, String
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC and always hands back aware UTC datetimes.

    SQLite drops time zones; normalising here means comparisons never mix
    naive and aware values, whichever database is underneath.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def is_id(value: object) -> TypeGuard[str]:
    """True for strings shaped like our ids (32 hex digits): anything else is unknown, unseen."""
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def id_column_type() -> String:
    return String(32)


def utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc)
