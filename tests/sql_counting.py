"""Counting the SQL statements a request sends, on the app's own engine (SQLite and PostgreSQL)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any,
                 _executemany: bool) -> None:
        self.statements.append(" ".join(statement.split())[:160])

    def report(self) -> str:
        return "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(self.statements))


@contextmanager
def counting(app: Any) -> Iterator[StatementCounter]:
    """The statements sent while the block runs."""
    engine = app.extensions["mfa"].engine
    counter = StatementCounter()
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)
