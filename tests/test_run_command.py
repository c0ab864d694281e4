"""The README's run command serves the API, the dev phone and the inbox within seconds."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.fault_servers import free_port
from tests.helpers import matched

ROOT = Path(__file__).resolve().parent.parent


def wait_for(url: str, deadline: float) -> requests.Response | None:
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=1)
        except requests.RequestException:
            time.sleep(0.1)
    return None


def log_text(log) -> str:
    log.seek(0)
    return re.sub(r"\x1b\[[0-9;]*m", "", log.read())  # the dev server colours its request lines


@pytest.mark.skipif(shutil.which("make") is None,
                    reason="`make` is not installed, so the README's run command cannot run")
def test_make_run_serves_the_api_with_a_demo_account(tmp_path):
    port, standin_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "INSTANCE_PATH": str(tmp_path),
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "TWILIO_API_BASE_URL": f"http://127.0.0.1:{standin_port}"}
    for name in ("DATABASE_URL", "SECRET_KEY", "DATA_KEY", "TELEPHONY_PROVIDER", "MFA_ENV", "TEST_DATABASE_URL"):
        env.pop(name, None)
    log = open(tmp_path / "run.log", "w+")
    started = time.monotonic()
    server = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health = wait_for(f"http://127.0.0.1:{port}/healthz", started + 60)
        elapsed = time.monotonic() - started
        log.seek(0)
        output = log.read()
        assert health is not None and health.status_code == 200, output
        print(f"\n`make run` answered HTTP after {elapsed:.1f} s")
        password = matched(r"Demo admin:\s+\S+\s+password: (\S+)", output).group(1)
        key = matched(r"Demo API key:\s+(\S+)", output).group(1)
        auth = requests.post(f"http://127.0.0.1:{port}/api/v1/authentications",
                             json={"username": "demo.admin@example.org", "password": password},
                             headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert auth.status_code == 201 and auth.json()["status"] == "registration_required"
        for page in ("/phone", "/inbox"):
            assert f"http://127.0.0.1:{standin_port}{page}" in output
            assert requests.get(f"http://127.0.0.1:{standin_port}{page}", timeout=5).status_code == 200

        # The stand-in it started knows the token generated into the instance folder: it takes the
        # text (REST), and the app takes its signed delivery reports (webhooks).
        token = (tmp_path / "twilio_auth_token").read_text().strip()
        assert len(token) >= 32 and token not in (ROOT / "settings.py").read_text()
        registered = requests.post(f"http://127.0.0.1:{port}/api/v1/authentications/{auth.json()['id']}/registrations",
                                   json={"type": "phone", "number": "07400 123456", "kind": "mobile",
                                         "delivery": "sms"},
                                   headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert registered.status_code == 201, registered.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and '"POST /twilio/sms/status HTTP/1.1" 204' not in log_text(log):
            time.sleep(0.1)  # the stand-in reports delivery a moment after its REST answer
        assert '"POST /twilio/sms/status HTTP/1.1" 204' in log_text(log)
        assert "forged webhook" not in log_text(log) and "another Twilio account" not in log_text(log)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        log.close()
