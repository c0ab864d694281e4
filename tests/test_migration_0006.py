"""Migration 0006 (Entra external MFA): a 0005 database keeps its people, sign-ins and methods, and gains
the linked Entra users, Entra's requests, our signing keys and authentications.approved_with; and the
models and the migrations describe the same schema."""
from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

import pytest

import models
from cli.database import alembic_config, upgrade
from models.database import make_engine
from tests.conftest import stored_now

NEW_TABLES = {"entra_links", "entra_requests", "entra_signing_keys"}
TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
OID = "cccc3333-dddd-4444-eeee-5555ffff6666"


def columns(conn, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}


def a_0005_person_with_a_sign_in_and_a_method(conn, now: dict) -> None:
    conn.execute(text("INSERT INTO users (id, username, password_hash, role, region, hybrid, language, "
                      "failed_count, created_at) VALUES ('u1', 'old.person', 'x', 'admin', 'england', false, "
                      "'en-GB', 0, :now)"), now)
    conn.execute(text("INSERT INTO methods (id, user_id, type, label, is_default, created_at, verified_at) "
                      "VALUES ('m1', 'u1', 'totp', 'Authenticator app', true, :now, :now)"), now)
    conn.execute(text("INSERT INTO authentications (id, user_id, status, registering, purpose, reason, attempts, "
                      "sends, created_at, expires_at, completed_at) VALUES ('a1', 'u1', 'approved', false, "
                      "'sign_in', 'verified', 1, 0, :now, :now, :now)"), now)


def add_entra_rows(conn, now: dict) -> None:
    conn.execute(text("INSERT INTO entra_links (id, user_id, tenant_id, object_id, created_at) "
                      f"VALUES ('l1', 'u1', '{TENANT}', '{OID}', :now)"), now)
    conn.execute(text("INSERT INTO entra_requests (id, authentication_id, tenant_id, object_id, subject, nonce, "
                      "hint_hash, links_on_approval, state, redirect_uri, acr, amr_allowed, created_at) VALUES ("
                      f"'r1', 'a1', :tenant, '{OID}', 'sub', 'n1', 'h1', false, "
                      "'state', 'https://login.microsoftonline.com/common/federation/externalauthprovider', "
                      "'possessionorinherence', 'otp tel', :now)"), {**now, "tenant": TENANT})
    conn.execute(text("INSERT INTO entra_signing_keys (kid, state, private_key, certificate, created_at) "
                      "VALUES ('k1', 'signing', :key, 'PEM', :now)"), {**now, "key": b"sealed"})


def test_a_0005_database_upgrades_keeping_its_sign_ins_and_downgrades(scratch_database, clock):
    url, pg = scratch_database
    config = alembic_config(url)
    command.upgrade(config, "0005")
    engine = make_engine(url)  # as the app makes it: SQLite enforces foreign keys
    now = {"now": stored_now(clock, pg)}
    with engine.begin() as conn:
        assert not NEW_TABLES & set(inspect(conn).get_table_names())
        assert "approved_with" not in columns(conn, "authentications")
        a_0005_person_with_a_sign_in_and_a_method(conn, now)
    command.upgrade(config, "0006")
    with engine.begin() as conn:
        assert NEW_TABLES <= set(inspect(conn).get_table_names())
        assert conn.execute(text("SELECT username FROM users")).scalars().all() == ["old.person"]
        assert conn.execute(text("SELECT id, type FROM methods")).all() == [("m1", "totp")]
        assert conn.execute(text("SELECT id, status, reason, approved_with FROM authentications")).all() == [
            ("a1", "approved", "verified", None)]  # no one knows which method approved an old sign-in
        add_entra_rows(conn, now)
        conn.execute(text("UPDATE authentications SET approved_with = 'totp' WHERE id = 'a1'"))
        with pytest.raises(IntegrityError):  # one Entra user, one person
            with conn.begin_nested():
                conn.execute(text("INSERT INTO entra_links (id, user_id, tenant_id, object_id, created_at) "
                                  f"VALUES ('l2', 'u1', '{TENANT}', '{OID}', :now)"), now)
        with pytest.raises(IntegrityError):  # a nonce answers one request only
            with conn.begin_nested():
                conn.execute(text("INSERT INTO entra_requests (id, authentication_id, tenant_id, object_id, subject, "
                                  "nonce, hint_hash, links_on_approval, state, redirect_uri, acr, amr_allowed, "
                                  "created_at) VALUES ('r2', 'a1', 't', 'o', 'sub', 'n1', 'h2', false, 's', 'r', 'a', "
                                  "'*', :now)"), now)
        conn.execute(text("DELETE FROM users WHERE id = 'u1'"))  # a removed person takes link and request along
        for table in ("entra_links", "entra_requests"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        assert conn.execute(text("SELECT kid FROM entra_signing_keys")).scalars().all() == ["k1"]
    command.downgrade(config, "0005")
    with engine.begin() as conn:
        assert not NEW_TABLES & set(inspect(conn).get_table_names())
        assert "approved_with" not in columns(conn, "authentications")
    upgrade(url)
    engine.dispose()


def test_the_models_match_the_migrated_schema(scratch_database):
    url, _ = scratch_database
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
