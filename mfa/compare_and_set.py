"""Compare-and-set on one loaded row: of several workers changing it at once, exactly one wins.

The change is one UPDATE by primary key that also states what the row must still look like.
The database decides who wins: on PostgreSQL a second UPDATE of the same row waits for the
first transaction and then re-checks the conditions, so it matches nothing once the first
committed. Nothing is read first, so no worker can act on a value another just changed.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session, object_mapper
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql import ClauseElement

from mfa.unit_of_work import rows_changed


class RowGone(LookupError):
    """The row was deleted meanwhile: a lost compare-and-set has nothing to read back."""


def compare_and_set(db: Session, row: object, *, where: Iterable[ColumnElement[bool]],
                    read_back: Iterable[str] = (), **values: object) -> bool:
    """Set `values` on `row` if the database row still matches `where`; True if this call won.

    A win leaves `row` showing the values written, without a second write or a read (the
    session does not see the row as changed). A loss reads back, in one SELECT, the columns
    it tried to set and those named in `read_back`, so `row` shows what the winner wrote;
    RowGone if the row no longer exists.
    Values must be plain values, not SQL expressions: the row must know what was written
    (state the old value in `where` instead: `where=[T.n == seen], n=seen + 1`).
    """
    for name, value in values.items():
        if isinstance(value, ClauseElement):
            raise TypeError(f"compare_and_set needs a plain value for {name!r}, not a SQL expression")
    mapper = object_mapper(row)
    by_key = [column == value
              for column, value in zip(mapper.primary_key, mapper.primary_key_from_instance(row), strict=True)]
    won = rows_changed(db,
        update(mapper).where(*by_key, *where).values(**values)
        .execution_options(synchronize_session=False)
    ) == 1
    if won:
        remember(row, **values)
        return True
    names = list(dict.fromkeys([*values, *read_back]))
    current = db.execute(select(*(mapper.columns[name] for name in names)).where(*by_key)).one_or_none()
    if current is None:
        raise RowGone(f"{mapper.class_.__name__} {mapper.primary_key_from_instance(row)} no longer exists")
    remember(row, **dict(zip(names, current, strict=True)))
    return False


def remember(row: object, **values: object) -> None:
    """Make `row` show values the database already holds (just written, or just read).

    No history is recorded, so the session will not write them again at the next flush.
    """
    for name, value in values.items():
        set_committed_value(row, name, value)
