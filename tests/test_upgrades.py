"""Upgrades: every revision in turn from an empty database keeps its data and ends where the models
are; landed migrations are never edited; `db upgrade` says what it did and refuses what it cannot
mend; `version` and /healthz name the release."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import models
from app import create_app
from cli.database import MIGRATIONS, alembic_config, head_revision
from models.database import make_engine
from tests.conftest import stored_now
from version import __version__

ROOT = Path(__file__).resolve().parent.parent
LANDED = Path(__file__).resolve().parent / "data" / "landed_migrations.json"


def revisions_in_order() -> list[str]:
    return [s.revision for s in reversed(list(ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()))]


def a_0001_person_with_their_things(conn, now: dict) -> None:
    conn.execute(text("INSERT INTO users (id, username, password_hash, role, region, hybrid, language, "
                      "failed_count, created_at) VALUES ('u1', 'first.person', 'x', 'admin', 'england', false, "
                      "'en-GB', 0, :now)"), now)
    conn.execute(text("INSERT INTO methods (id, user_id, type, label, is_default, created_at, verified_at) "
                      "VALUES ('m1', 'u1', 'totp', 'Authenticator app', true, :now, :now)"), now)
    conn.execute(text("INSERT INTO authentications (id, user_id, status, registering, purpose, reason, attempts, "
                      "sends, created_at, expires_at, completed_at) VALUES ('a1', 'u1', 'approved', false, "
                      "'sign_in', 'verified', 1, 0, :now, :now, :now)"), now)
    conn.execute(text("INSERT INTO app_passwords (id, user_id, name, secret_hash, created_at) "
                      "VALUES ('p1', 'u1', 'Mail', 'h1', :now)"), now)
    conn.execute(text("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES ('k1', 'portal', 'h2', :now)"), now)


def kept_rows(conn) -> list:
    return [conn.execute(text("SELECT username FROM users")).scalars().all(),
            conn.execute(text("SELECT id, type, is_default FROM methods")).all(),
            conn.execute(text("SELECT id, status, reason FROM authentications")).all(),
            conn.execute(text("SELECT name FROM app_passwords")).scalars().all(),
            conn.execute(text("SELECT name FROM api_keys")).scalars().all()]


def differences_from_the_models(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), models.Base.metadata)


def test_every_revision_in_turn_keeps_the_data_and_ends_where_the_models_are(scratch_database, clock):
    url, pg = scratch_database
    config = alembic_config(url)
    engine = make_engine(url)  # as the app makes it: SQLite enforces foreign keys
    revisions = revisions_in_order()
    assert revisions[0] == "0001" and revisions[-1] == head_revision() and len(revisions) >= 6
    try:
        command.upgrade(config, "0001")
        with engine.begin() as conn:
            a_0001_person_with_their_things(conn, {"now": stored_now(clock, pg)})
            expected = kept_rows(conn)
        for revision in revisions[1:]:
            command.upgrade(config, revision)
            with engine.connect() as conn:
                assert MigrationContext.configure(conn).get_current_revision() == revision
                assert kept_rows(conn) == expected, f"rows changed by {revision}"
        assert differences_from_the_models(engine) == []

        command.downgrade(config, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        command.upgrade(config, "head")
        assert differences_from_the_models(engine) == []
    finally:
        engine.dispose()


def hash_of(path: Path) -> str:
    # LF endings, so a checkout that turns them into CRLF (git's autocrlf on Windows) still matches.
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def test_landed_migrations_are_never_edited():
    landed = json.loads(LANDED.read_text())
    files = {p.name: p for p in sorted((MIGRATIONS / "versions").glob("*.py"))}
    edited = [name for name, digest in landed.items() if name not in files or hash_of(files[name]) != digest]
    assert edited == [], "a landed migration was edited or removed: add a new revision instead"
    unlisted = sorted(set(files) - set(landed))
    assert unlisted == [], f"add {unlisted} to {LANDED.name} when the migration lands"


def upgrade_cli(app_config, url: str, *args: str):
    app = create_app({**app_config, "DATABASE_URL": url})
    try:
        return app.test_cli_runner().invoke(args=list(args))
    finally:
        app.extensions["mfa"].engine.dispose()


def test_db_upgrade_says_what_it_did(app_config, scratch_database):
    url, _ = scratch_database
    head = head_revision()
    created = upgrade_cli(app_config, url, "db", "upgrade")
    assert (created.exit_code, created.output) == (0, f"Database schema created at {head}.\n")
    command.downgrade(alembic_config(url), "0004")
    upgraded = upgrade_cli(app_config, url, "db", "upgrade")
    assert (upgraded.exit_code, upgraded.output) == (0, f"Database schema upgraded from 0004 to {head}.\n")
    again = upgrade_cli(app_config, url, "db", "upgrade")
    assert (again.exit_code, again.output) == (0, f"Database schema is up to date ({head}).\n")


def test_a_database_from_a_pre_release_draft_of_0001_is_refused_in_one_line(app_config, scratch_database):
    url, _ = scratch_database
    command.upgrade(alembic_config(url), "0001")
    engine = make_engine(url)
    with engine.begin() as conn:  # as the first draft of 0001 made it: no do-not-call list, no send records
        conn.execute(text("DROP TABLE send_records"))
        conn.execute(text("DROP TABLE do_not_call"))
    engine.dispose()
    result = upgrade_cli(app_config, url, "db", "upgrade")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "pre-release draft of schema 0001" in result.output and "do_not_call, send_records" in result.output
    assert "create a new database" in result.output and "Traceback" not in result.output
    engine = make_engine(url)
    with engine.connect() as conn:  # left as it was
        assert MigrationContext.configure(conn).get_current_revision() == "0001"
    engine.dispose()


def test_a_database_newer_than_the_release_is_refused_in_one_line(app_config, scratch_database):
    url, _ = scratch_database
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    with engine.begin() as conn:  # a later release migrated it, then this one was deployed again
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    result = upgrade_cli(app_config, url, "db", "upgrade")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "schema 0099, newer than this release" in result.output


def test_version_names_the_release_and_the_schema(app_config, scratch_database):
    url, _ = scratch_database
    head = head_revision()
    command.upgrade(alembic_config(url), "0005")
    behind = upgrade_cli(app_config, url, "version")
    assert behind.exit_code == 0
    assert behind.output == (f"mfa-server {__version__} (schema 0005; this release needs {head}: "
                             "run `flask --app app db upgrade`)\n")
    command.upgrade(alembic_config(url), "head")
    current = upgrade_cli(app_config, url, "version")
    assert (current.exit_code, current.output) == (0, f"mfa-server {__version__} (schema {head})\n")


def test_version_still_answers_with_the_database_down(app_config, tmp_path):
    down = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2"  # the discard port: nothing listens
    result = upgrade_cli(app_config, down, "version")
    assert result.exit_code == 0
    assert result.output.startswith(f"mfa-server {__version__} (schema: unknown (database unavailable)")


def test_version_of_a_missing_sqlite_file_creates_nothing(app_config, tmp_path):
    missing = tmp_path / "not-yet.sqlite3"
    result = upgrade_cli(app_config, f"sqlite:///{missing}", "version")
    assert result.exit_code == 0 and "(schema none;" in result.output
    assert not missing.exists()


def test_the_changelog_leads_with_this_release():
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert releases and releases[0] == __version__
    assert len(releases) == len(set(releases))
