"""One commit per use case, taken by the edge (API view, webhook, page, CLI command)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.orm import Session

from mfa.errors import MfaError


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
