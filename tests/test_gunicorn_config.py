"""gunicorn as production runs it (`python -m ops.serve`): loopback by default, one control
socket per instance, one line for a malformed setting, and one JSON log stream."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from app import create_app
from ops import gunicorn_config
from ops.gunicorn_config import BadSetting, choose_bind, choose_control_socket, log_config
from ops.logs import JsonFormatter, TextFormatter
from tests.fault_servers import free_port

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_VARIABLES = ("PORT", "GUNICORN_BIND", "WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_CONTROL_SOCKET",
                      "LOG_FORMAT", "MFA_ENV", "RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR", "TEST_DATABASE_URL")
ACCOUNT_SID = "AC" + "0" * 28 + "1234"
AUTH_TOKEN = "token-that-never-reaches-a-log"


def clean_environ(**settings: str) -> dict[str, str]:
    environ = {name: value for name, value in os.environ.items() if name not in GUNICORN_VARIABLES}
    return {**environ, **settings}


# --- where it listens --------------------------------------------------------------------


def test_an_instance_listens_on_loopback_at_port_unless_told_otherwise():
    assert choose_bind({}) == "127.0.0.1:8000"
    assert choose_bind({"PORT": "8001"}) == "127.0.0.1:8001"
    assert choose_bind({"PORT": "8001", "GUNICORN_BIND": "0.0.0.0:8000"}) == "0.0.0.0:8000"
    assert choose_bind({"GUNICORN_BIND": "unix:/run/mfa/8001.sock"}) == "unix:/run/mfa/8001.sock"
    assert choose_bind({"GUNICORN_BIND": "[::1]:8002"}) == "[::1]:8002"


def test_each_instance_has_its_own_control_socket(tmp_path):
    runtime = {"XDG_RUNTIME_DIR": str(tmp_path)}
    first = choose_control_socket(runtime, choose_bind({"PORT": "8001"}))
    second = choose_control_socket(runtime, choose_bind({"PORT": "8002"}))
    assert (first, second) == (str(tmp_path / "gunicorn-8001.ctl"), str(tmp_path / "gunicorn-8002.ctl"))
    systemd = {**runtime, "RUNTIME_DIRECTORY": str(tmp_path / "mfa")}
    (tmp_path / "mfa").mkdir()
    assert choose_control_socket(systemd, "127.0.0.1:8001") == str(tmp_path / "mfa" / "gunicorn-8001.ctl")
    assert choose_control_socket({}, "unix:/run/mfa/8001.sock") == "/run/mfa/8001.ctl"
    assert choose_control_socket({"GUNICORN_CONTROL_SOCKET": "/run/mfa/a.ctl"}, "127.0.0.1:8001") == "/run/mfa/a.ctl"
    assert choose_control_socket({"GUNICORN_CONTROL_SOCKET": "off"}, "127.0.0.1:8001") is None


@pytest.mark.parametrize("environ, named", [
    ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY"),
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
    ({"GUNICORN_THREADS": "-1"}, "GUNICORN_THREADS"),
    ({"PORT": "eighty"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"WEB_CONCURRENCY": "\u00b2"}, "WEB_CONCURRENCY"),  # a superscript two: isdigit(), but not int()
    ({"PORT": "\u0663"}, "PORT"),  # an Arabic-Indic three: int() takes it
    ({"WEB_CONCURRENCY": "99999999999999999999"}, "WEB_CONCURRENCY"),
    ({"GUNICORN_THREADS": "1000"}, "GUNICORN_THREADS"),
])
def test_a_malformed_number_is_refused_naming_it(environ, named, capsys):
    with pytest.raises(SystemExit):
        gunicorn_config._from_environment(environ)
    assert capsys.readouterr().err.startswith(f"{named} must be a whole number")


@pytest.mark.parametrize("bind", ["nope", "127.0.0.1", "unix:relative.sock", "0.0.0.0:99999"])
def test_a_malformed_bind_is_refused_naming_it(bind):
    with pytest.raises(BadSetting, match="^GUNICORN_BIND"):
        choose_bind({"GUNICORN_BIND": bind})


# --- a malformed setting stops start-up with one line ---------------------------------------


@pytest.mark.parametrize("variable, value", [
    ("WEB_CONCURRENCY", "two"), ("WEB_CONCURRENCY", "0"), ("GUNICORN_THREADS", "-1"), ("PORT", "80x"),
    ("GUNICORN_BIND", "everywhere"), ("GUNICORN_CONTROL_SOCKET", "relative.ctl"),
])
def test_the_web_process_stops_on_a_malformed_setting_with_one_line_naming_it(variable, value):
    # --check-config: were the value accepted, gunicorn would load the app and exit 0 instead of serving.
    result = subprocess.run([sys.executable, "-m", "ops.serve", "--check-config"], cwd=ROOT,
                            env=clean_environ(**{variable: value}), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(f"{variable} must be"), result.stderr


def test_plain_gunicorn_with_the_config_also_stops_with_one_line():
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:ops.gunicorn_config", "--check-config",
                             "app:create_app()"], cwd=ROOT, env=clean_environ(GUNICORN_THREADS="four"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["GUNICORN_THREADS must be a whole number from 1 to 32, not 'four'."]


# --- one JSON log stream ------------------------------------------------------------------


@pytest.fixture
def production_server(tmp_path):
    """`python -m ops.serve` in production (JSON logs), behind one trusted proxy; its stderr when stopped."""
    port = free_port()
    env = clean_environ(
        MFA_ENV="production", SECRET_KEY="s", DATA_KEY=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{tmp_path / 'mfa.sqlite3'}", INSTANCE_PATH=str(tmp_path),
        PUBLIC_BASE_URL="https://mfa.example.org", TELEPHONY_PROVIDER="twilio", TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER="+441134960000", TRUSTED_PROXIES="1",
        PORT=str(port), WEB_CONCURRENCY="1", GUNICORN_THREADS="2", XDG_RUNTIME_DIR=str(tmp_path))
    stderr = open(tmp_path / "stderr.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "ops.serve"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=stderr, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.poll() is None:
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        assert server.poll() is None, Path(stderr.name).read_text()

        def stop() -> str:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            return Path(stderr.name).read_text()

        yield url, port, stop
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        stderr.close()


def test_gunicorn_and_the_app_write_one_json_stream_with_the_client_on_the_access_line(production_server, tmp_path):
    url, port, stop = production_server
    assert requests.get(url + "/healthz", headers={"X-Forwarded-For": "203.0.113.9", "X-Request-Id": "req-1"},
                        timeout=5).status_code == 200
    requests.get(url + "/api/v1/authentications/+447700900123", timeout=5)
    assert (tmp_path / f"gunicorn-{port}.ctl").is_socket()  # this instance's own control socket
    written = stop()

    lines = [json.loads(line) for line in written.splitlines()]  # every line is JSON, gunicorn's included
    messages = {(line["logger"], line["message"]) for line in lines}
    assert ("gunicorn.error", "Starting gunicorn " + __import__("gunicorn").__version__) in messages
    assert any(logger == "gunicorn.error" and message.startswith("Booting worker") for logger, message in messages)
    access = {line["path"]: line for line in lines if line["logger"] == "mfa.access" and line["status"] != 200}
    proxied = next(line for line in lines if line["logger"] == "mfa.access" and line["request_id"] == "req-1")
    assert (proxied["client"], proxied["path"], proxied["status"]) == ("203.0.113.9", "/healthz", 200)
    assert access["/api/v1/authentications/+••••••••••23"]["client"] == "127.0.0.1"  # no proxy said otherwise
    assert "447700900123" not in written
    assert ("mfa.startup", "telephony: twilio at https://api.twilio.com (account AC…1234)") in messages
    assert AUTH_TOKEN not in written and ACCOUNT_SID not in written


@pytest.mark.parametrize("trusted_proxies, client", [("1", "203.0.113.9"), ("0", "192.0.2.1")])
def test_the_access_line_names_the_client_the_trusted_proxies_vouch_for(app_config, caplog, trusted_proxies, client):
    app = create_app({**app_config, "TRUSTED_PROXIES": trusted_proxies})
    caplog.set_level(logging.INFO, logger="mfa.access")
    app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.9"},
                          environ_base={"REMOTE_ADDR": "192.0.2.1"})
    (record,) = [r for r in caplog.records if r.name == "mfa.access"]
    assert TextFormatter().format(record).split(" INFO mfa.access: ")[1].startswith(f"{client} GET /healthz 200 ")
    assert json.loads(JsonFormatter().format(record))["client"] == client
    app.extensions["mfa"].engine.dispose()


def test_the_text_access_line_masks_a_number_in_the_path_but_keeps_the_status(client, caplog):
    caplog.set_level(logging.INFO, logger="mfa.access")
    client.get("/api/v1/authentications/+447700900123")
    (record,) = [r for r in caplog.records if r.name == "mfa.access"]
    assert " GET /api/v1/authentications/+••••••••••23 401 " in TextFormatter().format(record)


@pytest.mark.parametrize("environ, formatter", [
    ({"MFA_ENV": "production"}, "ops.logs.JsonFormatter"),
    ({"LOG_FORMAT": "text"}, "ops.logs.TextFormatter"),
    ({}, None),  # development without LOG_FORMAT: gunicorn's own lines, as the app leaves logging alone too
])
def test_gunicorns_lines_take_the_apps_log_format(environ, formatter):
    config = log_config(environ)
    assert (config["formatters"]["app"]["()"] if config else None) == formatter
