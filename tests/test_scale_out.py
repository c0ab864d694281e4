"""Two instances under gunicorn share PostgreSQL and Redis: either can take any request.

A call challenge is started through instance A, whose PUBLIC_BASE_URL names instance B,
so the stand-in's signed webhooks for that call arrive at B; the sign-in's status is then
read from both. Call state lives in the database, keyed by challenge and CallSid, so B
needs nothing from A's memory.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from sqlalchemy.engine import make_url

from bench.database import recreate_postgresql
from bench.server import ROOT, Gunicorn, free_port
from mfa import accounts, api_keys
from tests.conftest import PASSWORD, TEST_AUTH_TOKEN, TEST_DATA_KEY
from tests.helpers import add_phone

REDIS_URL = "redis://127.0.0.1:6379/0"
NUMBER = "+447400555123"


def scale_out_database() -> str:
    """A database of its own beside TEST_DATABASE_URL's, so the instances never meet the
    suite's per-test TRUNCATE; made on first use, emptied on every run."""
    url = make_url(os.environ["TEST_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    own, _version = recreate_postgresql(url.set(database=f"{url.database}_scale_out"), url.database)
    return own


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def shared_env(standin_server, tmp_path_factory):
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("scale-out needs PostgreSQL: set TEST_DATABASE_URL (several instances cannot share SQLite)")
    if not redis_reachable():
        pytest.skip(f"scale-out needs Redis at {REDIS_URL}")
    env = {"MFA_ENV": "development", "DATABASE_URL": scale_out_database(), "SECRET_KEY": "scale-out-secret",
           "DATA_KEY": TEST_DATA_KEY, "REDIS_URL": REDIS_URL, "TELEPHONY_PROVIDER": "simulator",
           "TWILIO_API_BASE_URL": standin_server.url, "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN,
           "INSTANCE_PATH": str(tmp_path_factory.mktemp("scale-out"))}
    # The release step, as the Procfile runs it.
    migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    return env


@pytest.fixture(scope="module")
def instances(shared_env, tmp_path_factory):
    """A places calls whose webhooks go to B; B is its own public address."""
    logs = tmp_path_factory.mktemp("scale-out-logs")
    port_a, port_b = free_port(), free_port()
    b_url = f"http://127.0.0.1:{port_b}"
    a = Gunicorn({**shared_env, "PUBLIC_BASE_URL": b_url}, workers=1, threads=4, port=port_a,
                 log_path=logs / "a.log")
    b = Gunicorn({**shared_env, "PUBLIC_BASE_URL": b_url}, workers=1, threads=4, port=port_b,
                 log_path=logs / "b.log")
    try:
        for server in (a.launch(), b.launch()):
            server.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def api_key_and_alice(shared_env):
    from app import create_app
    from mfa.unit_of_work import use_case

    app = create_app(shared_env)
    rt = app.extensions["mfa"]

    def run(use):
        with rt.sessions() as s, use_case(s):
            return use(s, rt.services)

    key = run(lambda db, svc: api_keys.create(db, svc, "scale-out"))
    alice = run(lambda db, svc: accounts.create_user(db, svc, "alice", PASSWORD, role="admin", region="england"))
    add_phone(run, alice, NUMBER, types=("voice",))
    rt.engine.dispose()
    return key


def webhook_answers(server: Gunicorn, path: str) -> float:
    for line in requests.get(server.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(f'mfa_webhook_responses_total{{path="{path}",status="200"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_both_instances_are_ready_with_the_shared_database_and_redis(instances):
    for server in instances:
        assert requests.get(server.url + "/readyz", timeout=5).json()["checks"] == {"database": "ok", "redis": "ok",
                                                                                   "data_key": "ok"}


def test_a_call_started_through_one_instance_is_answered_at_the_other(instances, api_key_and_alice, phones):
    a, b = instances
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {api_key_and_alice}"
    auth = http.post(a.url + "/api/v1/authentications", json={"username": "alice", "password": PASSWORD},
                     timeout=15).json()
    voice = next(m for m in auth["methods"] if m["type"] == "voice")
    started = http.post(f"{a.url}/api/v1/authentications/{auth['id']}/challenges", json={"method_id": voice["id"]},
                        timeout=15)
    assert started.status_code == 201, started.text
    phones.wait_idle()
    sid = phones.calls(to=NUMBER)[-1].sid
    assert phones.call(sid).params["Url"].startswith(b.url + "/twilio/voice/answer")
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()

    for server in (a, b):
        assert http.get(f"{server.url}/api/v1/authentications/{auth['id']}", timeout=15).json()["status"] == "approved"
    assert webhook_answers(b, "/twilio/voice/keys") == 1
    assert webhook_answers(a, "/twilio/voice/keys") == 0
