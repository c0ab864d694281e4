"""The one compare-and-set helper (mfa/compare_and_set.py): one winner, and rows that tell the truth.

The two-session tests run on SQLite and on PostgreSQL (TEST_DATABASE_URL); the threaded race
needs PostgreSQL's row locks and is skipped on SQLite.
"""
from __future__ import annotations

import os
import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, select

from mfa.compare_and_set import RowGone, compare_and_set
from models import User
from tests.conftest import START


def load_bob(session) -> User:
    return session.scalar(select(User).where(User.username == "bob"))


def stored(runtime, column):
    with runtime.sessions() as other:
        return other.scalar(select(column).where(User.username == "bob"))


def statements_during(runtime, action) -> list[str]:
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_):
        seen.append(statement.split()[0].upper())

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)
    return seen


def test_a_win_sets_the_values_on_the_row_and_in_the_database_with_one_update(runtime, bob):
    with runtime.sessions() as session:
        user = load_bob(session)
        until = START + timedelta(minutes=15)
        won: list[bool] = []
        seen = statements_during(runtime, lambda: won.append(compare_and_set(
            session, user, where=[User.failed_count == 0], failed_count=10, locked_until=until)))
        assert won == [True]
        assert seen == ["UPDATE"]  # no read back, no second write
        assert (user.failed_count, user.locked_until) == (10, until)
        assert user not in session.dirty  # nothing left for the next flush to write again
        assert statements_during(runtime, session.flush) == []
        session.commit()
    assert stored(runtime, User.failed_count) == 10
    assert stored(runtime, User.locked_until) == until


def test_a_loss_writes_nothing_and_leaves_the_row_showing_what_the_winner_wrote(runtime, bob):
    with runtime.sessions() as first, runtime.sessions() as second:
        mine, theirs = load_bob(first), load_bob(second)
        assert compare_and_set(second, theirs, where=[User.failed_count == 0], failed_count=3, language="cy-GB")
        second.commit()
        lost = compare_and_set(first, mine, where=[User.failed_count == 0], failed_count=7, language="en-GB")
        assert lost is False
        assert (mine.failed_count, mine.language) == (3, "cy-GB")
        assert mine not in first.dirty
        first.commit()
    assert stored(runtime, User.failed_count) == 3
    assert stored(runtime, User.language) == "cy-GB"


def test_a_loss_reads_back_the_extra_columns_it_is_asked_for(runtime, bob):
    with runtime.sessions() as first, runtime.sessions() as second:
        mine, theirs = load_bob(first), load_bob(second)
        theirs.region = "wales"
        theirs.failed_count = 1
        second.commit()
        assert not compare_and_set(first, mine, where=[User.failed_count == 0], failed_count=5,
                                   read_back=["region"])
        assert (mine.failed_count, mine.region) == (1, "wales")


def test_a_row_deleted_meanwhile_is_reported_rather_than_left_stale(runtime, bob):
    with runtime.sessions() as session:
        user = load_bob(session)
        with runtime.sessions() as other:
            other.execute(delete(User).where(User.username == "bob"))
            other.commit()
        with pytest.raises(RowGone):
            compare_and_set(session, user, where=[User.failed_count == 0], failed_count=1)


def test_a_sql_expression_is_refused_because_the_row_could_not_know_the_result(runtime, bob):
    with runtime.sessions() as session:
        user = load_bob(session)
        with pytest.raises(TypeError):
            compare_and_set(session, user, where=[User.failed_count == 0], failed_count=User.failed_count + 1)
    assert stored(runtime, User.failed_count) == 0


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"),
                    reason="concurrent row locks need PostgreSQL: set TEST_DATABASE_URL")
def test_of_twenty_simultaneous_workers_exactly_one_wins_and_the_others_see_its_value(runtime, bob):
    ways = 20
    barrier = threading.Barrier(ways)
    results: dict[int, tuple[bool, int]] = {}
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait(30)
        with runtime.sessions() as session:  # connects now: the pool has fewer connections than workers
            user = load_bob(session)
            won = compare_and_set(session, user, where=[User.failed_count == 0], failed_count=n + 1)
            session.commit()
            with lock:
                results[n] = (won, user.failed_count)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(ways)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [n for n, (won, _) in results.items() if won]
    assert len(results) == ways and len(winners) == 1, results
    final = stored(runtime, User.failed_count)
    assert final == winners[0] + 1
    assert all(value == final for _, value in results.values())
