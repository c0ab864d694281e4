from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask.cli import with_appcontext
from sqlalchemy import inspect, make_url
from sqlalchemy.engine import Connection

from edge import runtime
from models.database import make_engine
from version import __version__

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# What the final 0001 creates that its pre-release drafts (before 0.6.0) did not: such a database is
# stamped 0001 yet lacks these, and no migration adds them (CHANGELOG.md, 0.6.0).
FINAL_0001_TABLES = {"do_not_call", "send_records"}
FINAL_0001_COLUMNS = {"authentications": {"registering", "purpose", "sends", "last_sent_at"}}


class SchemaRefused(Exception):
    """A database `db upgrade` must not touch; the message tells the operator what to do."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()}


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def missing_from_final_0001(conn: Connection) -> list[str]:
    schema = inspect(conn)
    tables = set(schema.get_table_names())
    missing = sorted(FINAL_0001_TABLES - tables)
    for table, wanted in FINAL_0001_COLUMNS.items():
        have = {c["name"] for c in schema.get_columns(table)} if table in tables else set()
        missing += sorted(f"{table}.{name}" for name in wanted - have)
    return missing


def check_upgradable(conn: Connection) -> str | None:
    """The revision the database is at, if `db upgrade` can safely start from it."""
    before = current_revision(conn)
    if before is None:
        return None
    if before not in known_revisions():
        raise SchemaRefused(f"the database is at schema {before}, newer than this release ({__version__}, "
                            f"schema {head_revision()}) knows: deploy that newer release again")
    missing = missing_from_final_0001(conn)
    if missing:
        raise SchemaRefused(f"the database was made by a pre-release draft of schema 0001 and lacks "
                            f"{', '.join(missing)}; no migration adds them: create a new database with "
                            "`flask --app app db upgrade` and add its people again (CHANGELOG.md, 0.6.0)")
    return before


def upgrade(database_url: str) -> tuple[str | None, str]:
    """Migrate to head; answers the revisions before and after."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            before = check_upgradable(conn)
        command.upgrade(alembic_config(database_url), "head")
        with engine.connect() as conn:
            after = current_revision(conn)
    finally:
        engine.dispose()
    assert after is not None
    return before, after


def upgrade_report(before: str | None, after: str) -> str:
    if before is None:
        return f"Database schema created at {after}."
    if before != after:
        return f"Database schema upgraded from {before} to {after}."
    return f"Database schema is up to date ({after})."


def schema_of(database_url: str) -> str | None:
    """The database's revision, None for an empty database; raises when it cannot be reached."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return None  # do not create the file just to look at it
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return current_revision(conn)
    finally:
        engine.dispose()


def version_line(database_url: str) -> str:
    head = head_revision()
    try:
        schema = schema_of(database_url)
    except Exception:  # the version is still worth printing with the database down
        return f"mfa-server {__version__} (schema: unknown (database unavailable); this release needs {head})"
    if schema == head:
        return f"mfa-server {__version__} (schema {head})"
    return (f"mfa-server {__version__} (schema {schema or 'none'}; this release needs {head}: "
            "run `flask --app app db upgrade`)")


@click.group("db", help="The database schema.")
def db_group():
    pass


@db_group.command("upgrade", help="Create or migrate the schema to the newest version (safe to repeat).")
@with_appcontext
def upgrade_command():
    try:
        before, after = upgrade(runtime().settings.database_url)
    except SchemaRefused as refused:
        raise click.ClickException(f"database upgrade refused: {refused}") from None
    except Exception as exc:  # a wrong URL or unreachable server: one line, not a trace
        raise click.ClickException(f"database upgrade failed: {str(exc).splitlines()[0]}") from None
    click.echo(upgrade_report(before, after))


@click.command("version", help="The release's version and the database's schema revision.")
@with_appcontext
def version_command():
    click.echo(version_line(runtime().settings.database_url))
