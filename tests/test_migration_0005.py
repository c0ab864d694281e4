"""Migration 0005 (abuse, spend and recovery): a 0004 database keeps its people and sends, and gains
the lockout counters, familiar sources, recovery codes, access passes and the toll-fraud columns."""
from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

import pytest

from cli.database import alembic_config, upgrade
from models.database import make_engine
from tests.conftest import stored_now

NEW_TABLES = {"familiar_sources", "recovery_codes", "access_passes"}
NEW_USER_COLUMNS = {"unfamiliar_failed_count", "unfamiliar_locked_until", "app_password_failed_count",
                    "app_password_locked_until", "lockouts"}
NEW_SEND_COLUMNS = {"challenge_id", "range_lookup", "outcome"}


def columns(conn, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}


def test_a_0004_database_upgrades_with_its_people_and_sends_and_downgrades(scratch_database, clock):
    url, pg = scratch_database
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = make_engine(url)  # as the app makes it: SQLite enforces foreign keys
    now = {"now": stored_now(clock, pg)}
    with engine.begin() as conn:
        assert not NEW_TABLES & set(inspect(conn).get_table_names())
        conn.execute(text("INSERT INTO users (id, username, password_hash, role, region, hybrid, language, "
                          "failed_count, created_at) VALUES ('u1', 'old.person', 'x', 'admin', 'england', false, "
                          "'en-GB', 3, :now)"), now)
        conn.execute(text("INSERT INTO send_records (at, user_id, phone_lookup, type) VALUES (:now, 'u1', 'h', 'sms')"),
                     now)
    upgrade(url)
    with engine.begin() as conn:
        assert NEW_TABLES <= set(inspect(conn).get_table_names())
        assert NEW_USER_COLUMNS <= columns(conn, "users")
        assert NEW_SEND_COLUMNS <= columns(conn, "send_records")
        person = conn.execute(text("SELECT failed_count, unfamiliar_failed_count, app_password_failed_count, "
                                   "lockouts, unfamiliar_locked_until FROM users")).one()
        assert tuple(person) == (3, 0, 0, 0, None)  # existing people start with clean new counters
        assert conn.execute(text("SELECT type, outcome FROM send_records")).one() == ("sms", None)
        conn.execute(text("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) "
                          "VALUES ('r1', 'u1', 'h1', :now)"), now)
        with pytest.raises(IntegrityError):  # one hash, one code
            with conn.begin_nested():
                conn.execute(text("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) "
                                  "VALUES ('r2', 'u1', 'h1', :now)"), now)
        conn.execute(text("INSERT INTO access_passes (id, user_id, secret_hash, created_at, expires_at, "
                          "uses_allowed, uses) VALUES ('p1', 'u1', 'h2', :now, :now, 1, 0)"), now)
        conn.execute(text("INSERT INTO familiar_sources VALUES ('u1', 'h3', :now, :now)"), now)
        conn.execute(text("DELETE FROM users WHERE id = 'u1'"))  # a removed person takes all of it along
        for table in NEW_TABLES:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
    command.downgrade(config, "0004")
    with engine.begin() as conn:
        assert not NEW_TABLES & set(inspect(conn).get_table_names())
        assert not NEW_USER_COLUMNS & columns(conn, "users")
        assert not NEW_SEND_COLUMNS & columns(conn, "send_records")
    upgrade(url)
    engine.dispose()
