"""Operations: /healthz, /readyz, /metrics, request ids and the logs operators read."""
from __future__ import annotations

import json
import logging
import re

import pytest
import requests
from prometheus_client import REGISTRY

from app import create_app
from mfa import api_keys, audit
from mfa.unit_of_work import use_case
from ops import logs
from tests.conftest import PASSWORD, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_DATA_KEY
from tests.helpers import (
    add_phone, enrol_app, last_code, pyotp_code, register_mobile, response_json, ring, secret_from_uri, sign_webhook,
    start_sign_in, state,
)
from tests.personas import ALICE
from version import __version__

REDIS_URL = "redis://127.0.0.1:6379/0"


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


# --- health and readiness ---------------------------------------------------------------


def test_healthz_answers_while_the_process_runs_and_names_the_release(client):
    assert client.get("/healthz").json == {"status": "ok", "version": __version__}


def test_readyz_is_ready_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"database": "ok", "data_key": "ok"}}


def test_readyz_answers_503_naming_the_database_when_it_cannot_be_reached(app_config, tmp_path):
    app = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path}/no/such/dir/db.sqlite3"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response_json(response)["failed"] == ["database"]
    assert response_json(response)["checks"]["database"].startswith("unavailable")


@pytest.mark.skipif(not redis_reachable(), reason=f"no Redis at {REDIS_URL}")
def test_readyz_checks_redis_when_redis_url_is_set(app_config):
    app = create_app({**app_config, "REDIS_URL": REDIS_URL})
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response_json(response)["checks"] == {"database": "ok", "redis": "ok", "data_key": "ok"}


def test_readyz_stays_ready_but_says_degraded_naming_redis_when_it_cannot_be_reached(app_config):
    # Without Redis each process counts its own limits and sign-in goes on: a 503 here would
    # take every instance out of the load balancer at once, for a counter store.
    app = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:9/0"})  # nothing listens there
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    body = response_json(response)
    assert (body["status"], body["failed"]) == ("degraded", ["redis"])
    assert body["checks"]["database"] == "ok"


# --- request ids ------------------------------------------------------------------------


def test_a_request_id_sent_in_is_echoed_out(client):
    assert client.get("/healthz", headers={"X-Request-Id": "proxy-42.a"}).headers["X-Request-Id"] == "proxy-42.a"


@pytest.mark.parametrize("offered", [None, "", "has spaces", "x" * 129, "quote\"{}"])
def test_a_missing_or_unusable_request_id_is_replaced_by_a_new_one(client, offered):
    headers = {"X-Request-Id": offered} if offered is not None else {}
    first = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    second = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


# --- behind a reverse proxy -----------------------------------------------------------------


@pytest.mark.parametrize("trusted, recorded", [("0", "127.0.0.1"), ("1", "203.0.113.9")])
def test_the_forwarded_address_is_believed_only_from_trusted_proxies(app_config, dave, trusted, recorded):
    from sqlalchemy import select

    from models import AuditEvent

    app = create_app({**app_config, "TRUSTED_PROXIES": trusted})
    rt = app.extensions["mfa"]
    with rt.sessions() as db, use_case(db):
        key = api_keys.create(db, rt.services, "proxy-test")
    app.test_client().post("/api/v1/authentications", json={"username": "dave", "password": PASSWORD},
                           headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": "203.0.113.9"})
    with rt.sessions() as db:
        row = db.scalars(select(AuditEvent).where(AuditEvent.event == "sign_in")).one()
    assert row.source_ip == recorded


# --- logs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, shown", [
    ("calling +447700900123 now", "calling +••••••••••23 now"),
    ("calling +44 7700 900123", "calling +•• •••• ••••23"),
    ("to 447700900123.", "to ••••••••••23."),
    ("national 07700900123", "national •••••••••23"),
])
def test_phone_like_digit_runs_are_masked_in_written_lines(text, shown):
    assert logs.mask_phone_numbers(text) == shown


@pytest.mark.parametrize("text", [
    "already masked +44 •••• ••0123", "at 2026-11-28T09:00:00", "from 127.0.0.1:5000",
    "call CA0123456789abcdef0123456789abcdef", "error 21211 after 1500 ms", "id 4f2a99c0123456789",
])
def test_things_that_are_not_phone_numbers_are_left_alone(text):
    assert logs.mask_phone_numbers(text) == text


@pytest.fixture
def json_logs(app_config, capsys):
    """An app writing JSON lines to (captured) stderr; the handler is removed afterwards."""
    root_level = logging.getLogger().level
    app = create_app({**app_config, "LOG_FORMAT": "json"})

    def lines():
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    yield app, lines
    logs.remove_handler()
    logging.getLogger().setLevel(root_level)


def test_production_logs_are_json_lines_with_the_request_id_and_numbers_masked(json_logs):
    app, lines = json_logs
    with app.test_request_context("/anything", headers={"X-Request-Id": "req-7"}):
        app.preprocess_request()
        logging.getLogger("mfa.somewhere").warning("could not reach %s", "+447700900123")
    written = [line for line in lines() if line["logger"] == "mfa.somewhere"]
    assert written == [{"time": written[0]["time"], "level": "WARNING", "logger": "mfa.somewhere",
                        "message": "could not reach +••••••••••23", "request_id": "req-7"}]
    assert written[0]["time"].endswith("+00:00")


def test_every_request_writes_one_access_line_carrying_its_request_id(json_logs):
    app, lines = json_logs
    response = app.test_client().get("/healthz?x=1")
    access = [line for line in lines() if line["logger"] == "mfa.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == response.headers["X-Request-Id"]
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/healthz", 200)


def production_environ() -> dict:
    from cryptography.fernet import Fernet

    return {"MFA_ENV": "production", "SECRET_KEY": "s", "DATA_KEY": Fernet.generate_key().decode(),
            "TELEPHONY_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t",
            "TWILIO_FROM_NUMBER": "+441134960000", "PUBLIC_BASE_URL": "https://mfa.example.org"}


def test_production_defaults_to_json_logs(tmp_path):
    from settings import load

    assert load(production_environ(), tmp_path).log_format == "json"


def test_the_reference_endpoint_is_refused_in_production(tmp_path):
    from settings import SettingsError, load

    with pytest.raises(SettingsError, match="BENCH_REFERENCE_ENDPOINT"):
        load({**production_environ(), "BENCH_REFERENCE_ENDPOINT": "true"}, tmp_path)


def test_the_reference_endpoint_exists_only_when_enabled(app_config, bob, client):
    assert client.get(f"/bench/reference/{bob.id}").status_code == 404
    enabled = create_app({**app_config, "BENCH_REFERENCE_ENDPOINT": "true"}).test_client()
    assert enabled.get(f"/bench/reference/{bob.id}").json == {"id": bob.id, "role": "admin"}


# --- metrics ------------------------------------------------------------------------------


def test_metrics_are_served_in_prometheus_text_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE mfa_sign_ins_total counter" in response.text
    assert "# TYPE mfa_webhook_duration_seconds histogram" in response.text


class Counts:
    """The sign-in and challenge counters when made; added() is what changed since, exactly:
    {("sign_ins" or "challenges", method, outcome): increase}. A call site passing the wrong
    method type shows up here as an unexpected key."""

    NAMES = {"mfa_sign_ins_total": "sign_ins", "mfa_challenges_total": "challenges"}

    def __init__(self):
        self.before = self.now()

    def now(self) -> dict:
        return {(self.NAMES[s.name], s.labels["method"], s.labels["outcome"]): s.value
                for metric in REGISTRY.collect() for s in metric.samples if s.name in self.NAMES}

    def added(self) -> dict:
        return {key: value - self.before.get(key, 0.0) for key, value in self.now().items()
                if value != self.before.get(key, 0.0)}


MFA_REQUIRED = {("sign_ins", "password", "mfa_required"): 1}


def test_an_app_code_sign_in_is_counted_by_method_and_outcome(api, bob, clock, client):
    secret = enrol_app(api, clock)
    counts = Counts()
    auth = start_sign_in(api)
    wrong = "000000" if pyotp_code(secret, clock.now()) != "000000" else "111111"
    api.post(f"/authentications/{auth['id']}/checks", {"code": wrong})
    api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert counts.added() == {**MFA_REQUIRED, ("challenges", "code", "wrong_code"): 1,
                              ("sign_ins", "totp", "approved"): 1, ("challenges", "totp", "approved"): 1}
    approved = counts.now()[("sign_ins", "totp", "approved")]
    assert f'mfa_sign_ins_total{{method="totp",outcome="approved"}} {approved}' in client.get("/metrics").text


def test_registering_an_app_is_counted_from_registration_required_to_totp_approved(api, bob, clock):
    counts = Counts()
    enrol_app(api, clock)
    assert counts.added() == {("sign_ins", "password", "registration_required"): 1,
                              ("sign_ins", "totp", "approved"): 1, ("challenges", "totp", "approved"): 1}


def test_password_only_sign_ins_and_refusals_are_counted_as_password(api, dave):
    counts = Counts()
    assert start_sign_in(api, "dave")["status"] == "approved"
    api.post("/authentications", {"username": "dave", "password": "not the password"})
    api.post("/authentications", {"username": "nobody", "password": PASSWORD})
    assert counts.added() == {("sign_ins", "password", "approved"): 1, ("sign_ins", "password", "failed"): 2}


def test_a_sign_in_that_runs_out_of_time_is_counted_under_no_method(api, bob, clock):
    enrol_app(api, clock)
    auth = start_sign_in(api)
    counts = Counts()
    clock.advance(minutes=10)
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "expired"
    assert counts.added() == {("sign_ins", "none", "expired"): 1}


def test_a_first_registration_overtaken_by_another_is_denied_under_its_own_method(api, run, bob, clock):
    auth = start_sign_in(api)
    uri = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"}).json["otpauth_uri"]
    add_phone(run, bob, "+447400123456", types=("sms",))
    counts = Counts()
    api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret_from_uri(uri), clock.now())})
    assert counts.added() == {("sign_ins", "totp", "denied"): 1}


def test_a_call_approval_is_counted_as_voice(live, phones, alice):
    counts = Counts()
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    assert state(live, auth)["status"] == "approved"
    assert counts.added() == {**MFA_REQUIRED, ("challenges", "voice", "started"): 1,
                              ("sign_ins", "voice", "approved"): 1, ("challenges", "voice", "approved"): 1}


def test_a_texted_code_approval_is_counted_as_sms(live, phones, bob):
    counts = Counts()
    auth, registered = register_mobile(live, phones)
    assert registered.status_code == 201
    live.api.post(f"/authentications/{auth['id']}/checks", {"code": last_code(phones, "+447400123456")})
    assert counts.added() == {("sign_ins", "password", "registration_required"): 1,
                              ("challenges", "sms", "started"): 1,
                              ("sign_ins", "sms", "approved"): 1, ("challenges", "sms", "approved"): 1}


def test_an_undelivered_text_is_counted_as_sms_by_its_reason(live, phones, bob):
    phones.set_sms_outcome("+447400123456", "undelivered", 30003)
    counts = Counts()
    assert register_mobile(live, phones)[1].status_code == 201
    phones.wait_idle()
    assert counts.added() == {("sign_ins", "password", "registration_required"): 1,
                              ("challenges", "sms", "started"): 1, ("challenges", "sms", "delivery_failed"): 1}


@pytest.mark.parametrize("behaviour, reason", [("busy", "busy"), ("no-answer", "no_answer")])
def test_a_call_that_fails_is_counted_as_voice_by_its_reason(live, phones, alice, behaviour, reason):
    phones.set_behaviour(ALICE, behaviour)
    counts = Counts()
    ring(live, phones, start_sign_in(live.api, "alice", expect="mfa_required"))
    phones.wait_idle()
    assert counts.added() == {**MFA_REQUIRED, ("challenges", "voice", "started"): 1,
                              ("challenges", "voice", reason): 1}


def test_pressing_nine_is_counted_as_voice_do_not_call(live, phones, alice):
    counts = Counts()
    sid = ring(live, phones, start_sign_in(live.api, "alice", expect="mfa_required"))
    phones.answer(sid)
    phones.press(sid, "9")
    phones.wait_idle()
    assert counts.added() == {**MFA_REQUIRED, ("challenges", "voice", "started"): 1,
                              ("challenges", "voice", "do_not_call"): 1}


def test_a_fraud_report_is_counted_as_voice_and_the_blocked_retry_as_a_password_refusal(live, phones, alice):
    counts = Counts()
    sid = ring(live, phones, start_sign_in(live.api, "alice", expect="mfa_required"))
    phones.answer(sid)
    phones.press(sid, "0#")
    phones.wait_idle()
    assert live.api.post("/authentications", {"username": "alice", "password": PASSWORD}).status_code == 423
    assert counts.added() == {**MFA_REQUIRED, ("challenges", "voice", "started"): 1,
                              ("sign_ins", "voice", "fraud_reported"): 1, ("challenges", "voice", "fraud_reported"): 1,
                              ("sign_ins", "password", "refused"): 1}


def test_a_use_case_that_rolls_back_counts_nothing(run):
    before = sample("mfa_audit_events_total", event="api_key_created", outcome="ok")

    def fails_after_recording(db, svc):
        audit.record(db, svc.clock, "api_key_created", "ok", detail="never committed")
        raise RuntimeError("something unexpected")

    with pytest.raises(RuntimeError):
        run(fails_after_recording)
    assert sample("mfa_audit_events_total", event="api_key_created", outcome="ok") == before
    run(lambda db, svc: audit.record(db, svc.clock, "api_key_created", "ok", detail="committed"))
    assert sample("mfa_audit_events_total", event="api_key_created", outcome="ok") == before + 1


def test_only_the_apps_own_sessions_are_counted(runtime):
    from sqlalchemy.orm import Session

    before = sample("mfa_audit_events_total", event="api_key_revoked", outcome="ok")
    with Session(runtime.engine) as elsewhere:  # a tool's or a library's session in the same process
        audit.record(elsewhere, runtime.services.clock, "api_key_revoked", "ok", detail="not the app's")
        elsewhere.commit()
    assert sample("mfa_audit_events_total", event="api_key_revoked", outcome="ok") == before
    with runtime.sessions() as own:
        audit.record(own, runtime.services.clock, "api_key_revoked", "ok", detail="the app's")
        own.commit()
    assert sample("mfa_audit_events_total", event="api_key_revoked", outcome="ok") == before + 1


def test_webhook_latency_is_observed_per_route_and_forged_ones_are_counted_as_403(client):
    url = "http://localhost/twilio/sms/status"
    params = {"AccountSid": TEST_ACCOUNT_SID, "MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    timed = sample("mfa_webhook_duration_seconds_count", path="/twilio/sms/status")
    forged = sample("mfa_webhook_responses_total", path="/twilio/sms/status", status="403")
    assert client.post(url, data=params, headers=sign_webhook(TEST_AUTH_TOKEN, url, params)).status_code == 204
    assert client.post(url, data=params, headers={"X-Twilio-Signature": "forged"}).status_code == 403
    assert sample("mfa_webhook_duration_seconds_count", path="/twilio/sms/status") == timed + 2
    assert sample("mfa_webhook_responses_total", path="/twilio/sms/status", status="403") == forged + 1


def test_twilio_errors_are_counted_by_code(live, phones, bob):
    refused = sample("mfa_twilio_errors_total", code="21211")
    phones.set_rest_error("+447400123456", 21211)
    assert register_mobile(live, phones)[1].status_code == 422
    assert sample("mfa_twilio_errors_total", code="21211") == refused + 1
    phones.set_rest_error("+447400123456", None)
    limited = sample("mfa_twilio_errors_total", code="20429")
    live.app.extensions["mfa"].services.telephony.sleep = lambda _s: None
    phones.fail_next_requests(2, status=429)  # the one refusal Twilio never acted on: retried
    assert register_mobile(live, phones)[1].status_code == 201
    assert sample("mfa_twilio_errors_total", code="20429") == limited + 2


def test_with_several_workers_every_metrics_answer_adds_up_all_of_them(database_url, tmp_path):
    """Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes whichever worker answers report the total."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.server import Gunicorn, free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/twilio/sms/status"
    (tmp_path / "prometheus").mkdir()
    env = {"DATABASE_URL": database_url, "DATA_KEY": TEST_DATA_KEY, "SECRET_KEY": "multiprocess-test",
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "INSTANCE_PATH": str(tmp_path / "instance"),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), "TWILIO_AUTH_TOKEN": TEST_AUTH_TOKEN}
    params = {"AccountSid": TEST_ACCOUNT_SID, "MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    headers = sign_webhook(TEST_AUTH_TOKEN, url, params)
    with Gunicorn(env, workers=2, threads=2, port=port, log_path=tmp_path / "gunicorn.log"):
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: requests.post(url, data=params, headers=headers, timeout=10).status_code,
                                    range(40)))
        assert answers == [204] * 40
        expected = 'mfa_webhook_responses_total{path="/twilio/sms/status",status="204"} 40.0'
        for _ in range(6):
            assert expected in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines()
