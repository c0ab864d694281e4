from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask.cli import with_appcontext

from edge import runtime

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


@click.group("db", help="The database schema.")
def db_group():
    pass


@db_group.command("upgrade", help="Create or migrate the schema to the newest version (safe to repeat).")
@with_appcontext
def upgrade_command():
    try:
        upgrade(runtime().settings.database_url)
    except Exception as exc:  # a wrong URL or unreachable server: one line, not a trace
        raise click.ClickException(f"database upgrade failed: {str(exc).splitlines()[0]}") from None
    click.echo("Database schema is up to date.")
