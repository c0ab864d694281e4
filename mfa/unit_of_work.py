"""One commit per use case, taken by the edge (API view, webhook, page, CLI command)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar, cast

from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from mfa.errors import MfaError

T = TypeVar("T")


@contextmanager
def use_case(session: Session) -> Iterator[Session]:
    """Commit when the use case finishes, including when it ends in a refusal.

    A refusal (MfaError) is an expected outcome whose bookkeeping - attempt
    counters, lockouts, audit rows - must persist; domain code validates input
    before it changes anything, so a refusal for bad input commits nothing.
    Any other exception rolls everything back.
    """
    try:
        yield session
    except MfaError:
        session.commit()
        raise
    except BaseException:
        session.rollback()
        raise
    else:
        session.commit()


class Transactions:
    """Runs the steps of one use case each in its own short transaction on one session.

    For the use cases that call the network half-way (a text or a call: reserve, call,
    record): the edge hands the domain function this runner instead of a session, and
    each step commits as a use case does. Between two steps no transaction is open and
    no lock is held; the rows loaded stay usable (the session keeps them after commit).
    """

    def __init__(self, session: Session):
        self.session = session

    def __call__(self, step: Callable[[Session], T]) -> T:
        with use_case(self.session):
            return step(self.session)


def rows_changed(db: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE and return how many rows it matched."""
    return cast("CursorResult[Any]", db.execute(statement)).rowcount
