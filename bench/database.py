"""A fresh, migrated database for one benchmark run: a SQLite file, or a PostgreSQL database
of its own (created when missing, its schema dropped and migrated again each run)."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cli.database import upgrade


def prepare(kind: str, postgresql_url: str, work: Path) -> tuple[str, str]:
    """The database URL for the server, and a label naming the database and its version."""
    if kind == "sqlite":
        url = f"sqlite:///{work / 'bench.sqlite3'}"
        upgrade(url)
        return url, "SQLite (WAL) file"
    pg_url = make_url(postgresql_url.replace("postgresql://", "postgresql+psycopg://", 1))
    if "bench" not in (pg_url.database or ""):
        raise SystemExit(f"--database-url must name a database used only for benchmarks (its name containing "
                         f"'bench'): its schema is dropped each run. Got {pg_url.database!r}.")
    plain, version = recreate_postgresql(pg_url)
    upgrade(plain)
    return plain, f"PostgreSQL {version} ({pg_url.host}, database {pg_url.database})"


def recreate_postgresql(url, admin_database: str | None = "postgres") -> tuple[str, str]:
    """Make the database when it is missing and empty its schema; returns its URL and the
    server's version. Only for databases made for benchmarks or tests."""
    admin = create_engine(url.set(database=admin_database), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}):
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        version = conn.scalar(text("SHOW server_version"))
    engine.dispose()
    return url.render_as_string(hide_password=False), version
