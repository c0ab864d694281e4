"""Shared fixtures: an app on a fresh database, a fixed clock, an API client, personas.

Tests run on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set.
"""
from __future__ import annotations

import os
import secrets
import shutil
import weakref
from datetime import datetime, timezone

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, event, text

from app import create_app
from cli.database import upgrade
from mfa import api_keys, change_notices
from mfa.clock import FixedClock
from mfa.unit_of_work import use_case
from models import Base
from settings import SIMULATOR_ACCOUNT_SID
from tests import personas
from tests.helpers import ApiClient, LiveApi, LiveServer, enrol_app
from tests.personas import PASSWORD  # noqa: F401  (tests import it from here too)

TEST_DATA_KEY = Fernet.generate_key().decode()
# The app's Twilio credentials and the stand-in's: the token is made per run, never a constant.
TEST_ACCOUNT_SID = SIMULATOR_ACCOUNT_SID
TEST_AUTH_TOKEN = secrets.token_urlsafe(32)
START = datetime(2026, 11, 28, 9, 0, 0, tzinfo=timezone.utc)


def _pg_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    """Migrate once per run: a template SQLite file, or the PostgreSQL database itself."""
    pg = _pg_url()
    if pg:
        engine = create_engine(pg)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        upgrade(pg)
        return pg
    template = tmp_path_factory.mktemp("db") / "template.sqlite3"
    upgrade(f"sqlite:///{template}")
    return template


@pytest.fixture
def database_url(migrated_database, tmp_path):
    pg = _pg_url()
    if not pg:
        path = tmp_path / "test.sqlite3"
        shutil.copy(migrated_database, path)
        yield f"sqlite:///{path}"
        return
    yield pg
    engine = create_engine(pg)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def scratch_database(tmp_path, request):
    """An empty database of the test's own, for migrating from an old version: a SQLite file, or a
    PostgreSQL schema named after the test (dropped afterwards); the suite's database stays as it is.
    Yields (url, on_postgresql)."""
    pg = _pg_url()
    if not pg:
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}", False
        return
    schema = "scratch_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:40]
    engine = create_engine(pg)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}", True
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def stored_now(clock, pg: bool):
    """A naive UTC time as a raw statement stores it: a datetime for PostgreSQL, its text for SQLite
    (Python 3.12+ deprecates sqlite3's own datetime adapter, and every warning is an error here)."""
    now = clock.now().replace(tzinfo=None)
    return now if pg else now.isoformat(sep=" ")


@pytest.fixture(autouse=True)
def dispose_engines():
    """Close the pooled connections of every engine the test used when it ends. An app a test
    makes for itself is otherwise collected later, its connections warning (ResourceWarning,
    an error here) in whichever test happens to be running then."""
    engines: weakref.WeakSet[Engine] = weakref.WeakSet()

    def used(connection):
        engines.add(connection.engine)

    event.listen(Engine, "engine_connect", used)
    yield
    event.remove(Engine, "engine_connect", used)
    for engine in list(engines):
        engine.dispose()


@pytest.fixture
def clock():
    return FixedClock(START)


@pytest.fixture
def app_config(database_url, clock, tmp_path):
    return {
        "DATABASE_URL": database_url,
        "CLOCK": clock,
        # Same algorithm, far cheaper parameters: keeps the suite fast.
        "PASSWORD_HASHER": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "DATA_KEY": TEST_DATA_KEY,
        "MFA_ENV": "development",
        "TELEPHONY_PROVIDER": "simulator",
        "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
        "PUBLIC_BASE_URL": "http://localhost",
        "MFA_REQUIRED_ROLES": "admin",
        "MFA_REQUIRED_REGIONS": "england",
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    app.config["TESTING"] = True
    yield app
    change_notices.wait_for_sends()  # texts about changed methods go out on threads: none outlives the test
    app.extensions["mfa"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runtime(app):
    return app.extensions["mfa"]


@pytest.fixture
def session(runtime):
    with runtime.sessions() as s:
        yield s


@pytest.fixture
def run(runtime):
    """Run one use case the way an edge does, in its own committed session."""

    def _run(use):
        with runtime.sessions() as s, use_case(s):
            return use(s, runtime.services)

    return _run


@pytest.fixture
def api(client, run):
    key = run(lambda db, svc: api_keys.create(db, svc, "tests"))
    return ApiClient(client, key)


# --- personas (tests/personas.py): each a fresh person in this test's database ---------------


@pytest.fixture
def alice(run):
    """An administrator in England with a verified mobile (texts and calls)."""
    return personas.alice(run)


@pytest.fixture
def bob(run):
    """An administrator in England who has not registered any method yet."""
    return personas.bob(run)


@pytest.fixture
def carol(run):
    """An administrator in England with a hybrid mailbox."""
    return personas.carol(run)


@pytest.fixture
def dave(run):
    """An ordinary user in Wales: policy needs no second factor."""
    return personas.dave(run)


@pytest.fixture
def totp_bob(api, bob, clock):
    """bob with an authenticator app; returns its secret."""
    return enrol_app(api, clock)


# --- the Twilio stand-in and the app served over real HTTP ---------------------------


@pytest.fixture(scope="session")
def standin_server():
    from standin import StandinServer, create_standin_app

    server = StandinServer(create_standin_app(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, realtime=False))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def phones(standin_server):
    """The stand-in's simulated telephone network, emptied for each test."""
    network = standin_server.network
    network.reset()
    yield network
    network.wait_idle()
    network.reset()


@pytest.fixture
def live(app_config, standin_server, phones):
    """The app on a real port, with the stand-in as its Twilio; `live.api` speaks JSON to it."""
    server = LiveServer()
    app = create_app({
        **app_config,
        "PUBLIC_BASE_URL": server.url,
        "TWILIO_API_BASE_URL": standin_server.url,
    })
    server.start(app)
    key = run_in(app, lambda db, svc: api_keys.create(db, svc, "live-tests"))
    server.api = LiveApi(server.url, key)
    server.app = app
    yield server
    change_notices.wait_for_sends()
    phones.wait_idle()
    server.stop()
    app.extensions["mfa"].engine.dispose()


def run_in(app, use):
    """Run one use case in `app`, committed, as an edge does."""
    rt = app.extensions["mfa"]
    with rt.sessions() as s, use_case(s):
        return use(s, rt.services)
