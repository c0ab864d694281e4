"""The database or Redis going away: 503s (never a trace), sign-in on, and back by itself."""
from __future__ import annotations

import logging
import re
from typing import Any
import threading
import time
import xml.etree.ElementTree as ET

import psycopg
import pytest
import requests
from sqlalchemy import create_engine, exc as sa_exc, select

from app import create_app
from cli.database import upgrade
from edge import UNAVAILABLE
from mfa import accounts, api_keys, app_passwords
from mfa.limits import CATALOGUE
from mfa.unit_of_work import use_case
from models import Authentication
from tests.conftest import PASSWORD
from tests.fault_servers import TempPostgres, TempRedis, free_port
from tests.helpers import LiveApi, LiveServer, close_rate_limit_store, response_json, sign_webhook

UNAVAILABLE_JSON = {"error": "unavailable", "message": UNAVAILABLE}
UNAVAILABLE_PAGE = "the page saying the service is unavailable"


def run_in(app, use):
    rt = app.extensions["mfa"]
    with rt.sessions() as s, use_case(s):
        return use(s, rt.services)


# --- a database that cannot be reached at all -------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def down(request, app_config, tmp_path):
    """An app whose database cannot be reached: a SQLite file in a missing folder, or a
    PostgreSQL port where nothing listens."""
    url = (f"sqlite:///{tmp_path}/no/such/folder/db.sqlite3" if request.param == "sqlite"
           else f"postgresql://postgres@127.0.0.1:{free_port()}/mfa")
    app = create_app({**app_config, "DATABASE_URL": url})
    app.config["WTF_CSRF_ENABLED"] = False  # the page under test, not the token
    yield app
    app.extensions["mfa"].engine.dispose()


def assert_unavailable_json(response):
    assert response.status_code == 503
    assert response.json == UNAVAILABLE_JSON
    assert response.headers["Retry-After"] == "30"


@pytest.mark.parametrize("method, path, body", [
    ("post", "/api/v1/authentications", {"username": "dave", "password": PASSWORD}),
    ("get", "/api/v1/authentications/" + "a" * 32, None),
    ("post", "/api/v1/app-passwords/verify", {"username": "dave", "app_password": "abcd efgh ijkl mnop"}),
])
def test_with_the_database_down_the_api_answers_503_unavailable_in_its_error_shape(down, method, path, body):
    response = getattr(down.test_client(), method)(path, json=body, headers={"Authorization": "Bearer mfa_" + "k" * 43})
    assert_unavailable_json(response)


def test_with_the_database_down_a_page_answers_503_saying_to_try_again_in_a_minute(down):
    response = down.test_client().post("/sign-in", data={"username": "dave", "password": PASSWORD})
    assert response.status_code == 503 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert UNAVAILABLE in page and "Traceback" not in page and "OperationalError" not in page


def _signed_post(app, path: str, form: dict):
    settings = app.extensions["mfa"].settings
    form = {"AccountSid": settings.twilio_account_sid, **form}
    headers = sign_webhook(settings.twilio_auth_token, settings.public_base_url + path, form)
    return app.test_client().post(path, data=form, headers=headers)


@pytest.mark.parametrize("path, form", [
    ("/twilio/voice/answer?challenge=" + "a" * 32, {"CallSid": "CA" + "1" * 32, "CallStatus": "in-progress"}),
    ("/twilio/voice/keys?challenge=" + "a" * 32 + "&turn=0", {"CallSid": "CA" + "1" * 32, "Digits": "#"}),
])
def test_with_the_database_down_a_verification_call_hears_a_polite_goodbye(down, path, form):
    response = _signed_post(down, path, form)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert ET.fromstring(response.data).find("Hangup") is not None


def test_with_the_database_down_a_text_status_callback_answers_503(down):
    # Twilio does not retry status callbacks; a 503 at least shows in its debugger (11200).
    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    response = _signed_post(down, "/twilio/sms/status", form)
    assert response.status_code == 503


@pytest.mark.parametrize("path, form", [
    ("/twilio/voice/status", {"CallSid": "CA" + "1" * 32, "CallStatus": "busy"}),
    ("/twilio/voice/amd", {"CallSid": "CA" + "1" * 32, "AnsweredBy": "machine_end_beep"}),
])
def test_with_the_database_down_a_call_status_callback_answers_503_like_a_text_one(down, path, form):
    response = _signed_post(down, path + "?challenge=" + "a" * 32, form)
    assert response.status_code == 503


def test_with_the_database_down_readyz_says_not_ready(down):
    response = down.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["failed"] == ["database"]


def test_an_outage_is_one_warning_line_without_a_trace_not_a_line_per_request(down, caplog):
    caplog.set_level(logging.INFO)
    client = down.test_client()
    for _ in range(10):
        assert_unavailable_json(client.post("/api/v1/authentications", json={},
                                            headers={"Authorization": "Bearer mfa_" + "k" * 43}))
        assert client.post("/sign-in", data={"username": "dave", "password": "x"}).status_code == 503
        assert client.get("/readyz").status_code == 503  # a balancer's probe every few seconds
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == ["mfa.edge"]
    assert warnings[0].getMessage().startswith("database unavailable, answering 503 (OperationalError: ")
    assert not any(r.exc_info for r in caplog.records)


def test_the_warning_is_repeated_once_a_minute_with_the_count_of_503s_and_the_end_is_said_once(caplog):
    from edge import OutageLog

    caplog.set_level(logging.INFO)
    now = [0.0]
    outage_log, error = OutageLog(now=lambda: now[0]), sa_exc.OperationalError("SELECT 1", {}, Exception("refused"))
    for second in range(0, 130, 10):
        now[0] = float(second)
        outage_log.report(error)
    outage_log.ended()
    outage_log.report(error)  # a straggler that failed as the database came back
    outage_log.ended()
    lines = [r.getMessage() for r in caplog.records if r.name == "mfa.edge"]
    refused = "database unavailable, answering 503 (OperationalError: refused)"
    assert lines == [refused,
                     f"{refused}; 5 more failures since the last line",
                     f"{refused}; 5 more failures since the last line",
                     "database reachable again (0 more failures since the last warning)"]


# --- which database errors count as an outage ----------------------------------------------

class _Refused(Exception):
    pass


@pytest.mark.parametrize("error, status", [
    (sa_exc.OperationalError("SELECT 1", {}, _Refused("connection refused")), 503),
    (sa_exc.InterfaceError("SELECT 1", {}, _Refused("connection already closed")), 503),
    (sa_exc.DBAPIError("SELECT 1", {}, _Refused("server closed the connection"), connection_invalidated=True), 503),
    (sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"), 503),
    (psycopg.OperationalError("connection failed"), 503),
    (sa_exc.IntegrityError("INSERT", {}, _Refused("duplicate key")), 500),  # a bug, not an outage
    (sa_exc.ProgrammingError("SELECT", {}, _Refused("no such column")), 500),
])
def test_only_connection_failures_become_503_other_database_errors_stay_500s(app_config, error, status):
    app = create_app(app_config)

    def fail():
        raise error

    app.add_url_rule("/api/v1/_fails", "api_fails", fail)
    app.add_url_rule("/_fails", "page_fails", fail)
    api_answer, page_answer = app.test_client().get("/api/v1/_fails"), app.test_client().get("/_fails")
    assert (api_answer.status_code, page_answer.status_code) == (status, status)
    assert response_json(api_answer)["error"] == ("unavailable" if status == 503 else "server_error")
    app.extensions["mfa"].engine.dispose()


def test_a_connection_dying_after_the_answer_is_made_does_not_turn_it_into_a_500(app_config):
    # What a server stopped mid-request leaves: the rollback that closes the request's
    # session fails. The answer was already made; the dead connection is dropped.
    from edge import db

    app = create_app(app_config)
    dropped = []

    def answered_then_lost():
        session = db()
        session.connection()  # a transaction is open
        real_close = session.close

        def close():
            real_close()
            raise sa_exc.OperationalError("ROLLBACK", {}, _Refused("server closed the connection"))

        # The session's own methods, replaced on this one object: a deliberate monkeypatch.
        session.close, session.invalidate = close, lambda: dropped.append(True)  # type: ignore[method-assign]
        return "done"

    app.add_url_rule("/_lost", "lost", answered_then_lost)
    response = app.test_client().get("/_lost")
    assert (response.status_code, response.text, dropped) == (200, "done", [True])
    app.extensions["mfa"].engine.dispose()


# --- a real PostgreSQL stopped mid-run ------------------------------------------------------


def test_a_database_stopped_mid_run_answers_503_then_recovers_by_itself_losing_nothing_acknowledged(
        app_config, caplog):
    caplog.set_level(logging.INFO)
    pg = TempPostgres()  # skips, saying why, without initdb/pg_ctl
    server = app = None
    try:
        pg.start()
        upgrade(pg.url)
        server = LiveServer()
        # Five clients asking as fast as they can, from one address with one key: far over the
        # rate limits (docs/limits.md), which are not what this test is about.
        unlimited = {limit.setting: "1000000" for limit in CATALOGUE if limit.setting.startswith("RATE_LIMIT_")}
        app = create_app({**app_config, **unlimited, "DATABASE_URL": pg.url, "PUBLIC_BASE_URL": server.url})
        server.start(app)
        key = run_in(app, lambda db, svc: api_keys.create(db, svc, "outage"))
        dave = run_in(app, lambda db, svc: accounts.create_user(db, svc, "dave", PASSWORD, role="user", region="wales"))
        _, app_password = run_in(app, lambda db, svc: app_passwords.create(db, svc, db.merge(dave), "Mail"))

        answers: list[tuple[float, str, int, Any]] = []  # Any: a JSON body or a page's text
        stop = threading.Event()

        def keep_asking(number: int):
            api = LiveApi(server.url, key)
            while not stop.is_set():
                if number % 2:
                    r = api.post("/authentications", {"username": "dave", "password": PASSWORD})
                else:
                    r = api.post("/app-passwords/verify", {"username": "dave", "app_password": app_password})
                answers.append((time.monotonic(), r.request.path_url, r.status_code,
                                r.json() if r.headers.get("Content-Type") == "application/json" else r.text))

        def keep_signing_in_by_browser():
            while not stop.is_set():
                for path, status, page in _browser_sign_in_answers(server.url, "dave"):
                    answers.append((time.monotonic(), path, status, page))

        def recorded(work, *args):
            def worker():
                try:
                    work(*args)
                except Exception as exc:  # a dropped connection or the like: reported, not lost
                    answers.append((time.monotonic(), "(worker)", 0, repr(exc)))
            return threading.Thread(target=worker, daemon=True)

        def wait_for(condition, seconds: float, what: str):
            deadline = time.monotonic() + seconds
            while not condition():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                time.sleep(0.05)

        def count(status, since=0.0, path=""):
            return sum(1 for at, p, s, _ in list(answers) if s == status and at >= since and p.startswith(path))

        workers = [recorded(keep_asking, n) for n in range(4)] + [recorded(keep_signing_in_by_browser)]
        for worker in workers:
            worker.start()
        wait_for(lambda: count(201) >= 10, 10, "sign-ins before the outage")
        pg.stop("immediate")
        stopped = time.monotonic()
        wait_for(lambda: count(503, stopped) >= 20 and count(503, stopped, "/sign-in") >= 1, 10,
                 "503s during the outage, pages included")
        pg.start()
        restarted = time.monotonic()
        wait_for(lambda: count(201, restarted) >= 10 and count(200, restarted, "/api") >= 10
                 and count(302, restarted, "/sign-in") >= 3, 20, "recovery")
        stop.set()
        for worker in workers:
            worker.join(timeout=20)

        unexpected = [(path, status, body) for _, path, status, body in answers
                      if not (status == 503 and body in (UNAVAILABLE_JSON, UNAVAILABLE_PAGE)
                              or (path, status) in (("/sign-in (page)", 200), ("/sign-in (form)", 302))
                              or status == 201 and path.endswith("/authentications") and body["status"] == "approved"
                              or status == 200 and body == {"valid": True})]
        assert unexpected == []
        acknowledged = {body["id"] for _, _, status, body in answers if status == 201}
        engine = create_engine(pg.url)
        with engine.connect() as conn:
            kept = set(conn.scalars(select(Authentication.id).where(Authentication.id.in_(acknowledged))))
        engine.dispose()
        assert kept == acknowledged
        print(f"database outage: {len(answers)} answers, {count(503)} of them 503, "
              f"{len(acknowledged)} sign-ins acknowledged, {len(acknowledged - kept)} lost")
        said = [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records if r.name == "mfa.edge"]
        assert said == [("WARNING", "database unavailable, answering 503"), ("INFO", "database reachable again")]
        assert not [r for r in caplog.records if r.exc_info], "no trace for an outage"
    finally:
        if server is not None:
            server.stop()
        if app is not None:
            app.extensions["mfa"].engine.dispose()
        pg.remove()


# --- a real Redis killed mid-run --------------------------------------------------------------


def _browser_sign_in_answers(base_url: str, username: str):
    """The sign-in page, then the form posted: (path, status, what was said) for each."""
    browser = requests.Session()
    page = browser.get(base_url + "/sign-in", timeout=10)
    said = UNAVAILABLE_PAGE if page.status_code == 503 and UNAVAILABLE in page.text else page.text[:200]
    yield "/sign-in (page)", page.status_code, said
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if token is None:
        return
    answer = browser.post(base_url + "/sign-in", data={"username": username, "password": PASSWORD,
                                                       "csrf_token": token.group(1)}, allow_redirects=False, timeout=10)
    said = UNAVAILABLE_PAGE if answer.status_code == 503 and UNAVAILABLE in answer.text else answer.text[:200]
    yield "/sign-in (form)", answer.status_code, said


def _browser_sign_in(base_url: str) -> int:
    *_, (_, status, _) = _browser_sign_in_answers(base_url, "dave")
    return status


def _limit_counts(redis) -> dict[str, int]:
    return {k.decode(): int(redis.get(k)) for k in redis.keys("LIMITS:*")}


def test_with_redis_gone_browser_sign_in_keeps_working_on_in_process_limits_until_redis_is_back(
        app_config, dave, caplog):
    caplog.set_level(logging.INFO)
    redis = TempRedis()  # skips, saying why, without redis-server
    server = app = None
    try:
        redis.start()
        server = LiveServer()
        app = create_app({**app_config, "REDIS_URL": redis.url, "PUBLIC_BASE_URL": server.url})
        server.start(app)
        assert _browser_sign_in(server.url) == 302
        assert set(_limit_counts(redis.client()).values()) == {1}  # the sign-in's limits live in Redis

        redis.kill()
        assert [_browser_sign_in(server.url) for _ in range(5)] == [302] * 5
        ready = requests.get(server.url + "/readyz", timeout=10)
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")  # stays in the balancer
        fallbacks = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [(r.name, r.getMessage().split(" (")[0]) for r in fallbacks] == [
            ("flask-limiter", "Rate limit storage unreachable - falling back to in-memory storage"),
            ("mfa.edge", "redis unavailable, limits counted in-process")]  # said by /readyz

        redis.start()  # an empty Redis on the same port
        deadline = time.monotonic() + 35  # flask-limiter retries Redis after 1, 2, 4, 8... s
        while not any(r.getMessage() == "Rate limit storage recovered" for r in caplog.records):
            assert time.monotonic() < deadline, "the limiter never went back to Redis"
            requests.get(server.url + "/api/v1/limits", timeout=10)  # a limited route lets the limiter look
            time.sleep(0.2)
        assert _browser_sign_in(server.url) == 302
        assert set(_limit_counts(redis.client()).values()) == {1}  # counted in Redis again
    finally:
        if server is not None:
            server.stop()
        if app is not None:
            close_rate_limit_store(app)
            app.extensions["mfa"].engine.dispose()
        redis.kill()
