"""The README works as written: its shell blocks paste into bash, its API walk-through signs the
demo administrator in against `python app.py`, and the dev server's banner and stand-in follow PORT."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.fault_servers import free_port, free_ports
from tests.helpers import matched

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
UNSET = ("DATABASE_URL", "SECRET_KEY", "DATA_KEY", "TELEPHONY_PROVIDER", "MFA_ENV", "TEST_DATABASE_URL",
         "PUBLIC_BASE_URL", "TWILIO_API_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PORT")


def shell_blocks() -> list[str]:
    return [body for language, body in FENCE.findall(README.read_text()) if language in ("sh", "bash")]


def walk_through() -> str:
    section = README.read_text().split("## Signing someone in through the API", 1)[1]
    found = FENCE.search(section)
    assert found, "the walk-through's shell block is missing"
    return found.group(2)


def dev_env(instance: Path, **settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in UNSET}
    return {**env, "INSTANCE_PATH": str(instance), **settings}


class DevServer:
    """`python app.py` (what `make run` runs) in a folder of its own, its output kept."""

    def __init__(self, instance: Path, **settings: str):
        instance.mkdir(parents=True, exist_ok=True)
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=dev_env(instance, **settings),
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def wait_for_banner(self, seconds: float = 60) -> str:
        deadline = time.monotonic() + seconds
        while "Stop with Ctrl+C" not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.1)
        return self.output()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)
        self.log.close()


def wait_until_answering(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """One dev server on a free PORT, its stand-in on another free port; the walk-through's
    folder holds its instance as `instance/`, as the checkout does."""
    folder = tmp_path_factory.mktemp("readme")
    port, standin_port = free_port(), free_port()
    server = DevServer(folder / "instance", PORT=str(port), TWILIO_API_BASE_URL=f"http://127.0.0.1:{standin_port}")
    server.port, server.standin_port, server.folder = port, standin_port, folder  # type: ignore[attr-defined]
    server.banner = server.wait_for_banner()  # type: ignore[attr-defined]
    wait_until_answering(f"http://127.0.0.1:{port}/healthz")
    yield server
    server.stop()


@pytest.mark.parametrize("block", shell_blocks(), ids=lambda block: block.split("\n", 1)[0][:40])
def test_every_readme_shell_block_is_bash_with_nothing_left_to_fill_in(block):
    checked = subprocess.run(["bash", "-n"], input=block, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    commands = [line.split("  #", 1)[0] for line in block.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if "…" in line], "a placeholder a reader would have to replace"


def test_the_readme_has_the_api_walk_through_as_a_shell_block():
    assert walk_through() in shell_blocks()


def test_the_readme_api_walk_through_signs_the_demo_admin_in_as_written(dev):
    assert shutil.which("oathtool"), "oathtool is missing (Debian package oathtool; `make test` installs it)"
    ran = subprocess.run(["bash", "-e", "-u", "-o", "pipefail"], input=walk_through(), text=True,
                         capture_output=True, cwd=dev.folder, env={**dev_env(dev.folder / "instance"),
                                                                   "PORT": str(dev.port)}, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stderr == ""
    answers = ran.stdout.splitlines()
    assert '"status":"registration_required"' in answers[0]
    assert '"otpauth_uri":"otpauth://totp/' in answers[1]
    assert '"status":"approved"' in answers[2] and '"reason":"verified"' in answers[2]


def test_the_banner_follows_port(dev):
    base = f"http://127.0.0.1:{dev.port}"
    assert f"on {base}\n" in dev.banner
    assert f"{base}/api/v1/authentications" in dev.banner
    assert ":5000" not in dev.banner and ":5001" not in dev.banner


def test_the_banners_curl_line_works_pasted_into_bash(dev):
    line = matched(r"Try the API:\s+(curl .*\\\n.*)", dev.banner).group(1)
    ran = subprocess.run(["bash"], input=line, text=True, capture_output=True, timeout=30)
    assert '"status":"registration_required"' in ran.stdout or '"status":"mfa_required"' in ran.stdout, ran


def test_port_alone_moves_the_stand_in_beside_the_server(tmp_path):
    port = free_ports(2)  # the stand-in takes PORT+1
    server = DevServer(tmp_path / "instance", PORT=str(port))
    try:
        banner = server.wait_for_banner()
        assert f"Twilio stand-in: http://127.0.0.1:{port + 1} (started with this server)" in banner
        assert f"Dev phone:       http://127.0.0.1:{port + 1}/phone" in banner
        wait_until_answering(f"http://127.0.0.1:{port + 1}/phone")
        assert requests.get(f"http://127.0.0.1:{port + 1}/standin.json", timeout=5).json()["started_by"] == (
            f"python app.py on http://127.0.0.1:{port} (instance {tmp_path / 'instance'})")
    finally:
        server.stop()


def test_a_stand_in_of_another_instance_on_the_port_stops_start_up_naming_it(dev, tmp_path):
    standin = f"http://127.0.0.1:{dev.standin_port}"
    other = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env=dev_env(tmp_path, PORT=str(free_port()), TWILIO_API_BASE_URL=standin))
    assert other.returncode != 0
    last = other.stdout.strip().splitlines()[-1] if other.stdout.strip() else other.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{standin} is already in use by another Twilio stand-in, started by python app.py "
                           f"on http://127.0.0.1:{dev.port}"), other.stdout + other.stderr
    assert "with another auth token" in last


def test_something_else_on_the_stand_in_port_stops_start_up_saying_it_is_not_the_stand_in(dev, tmp_path):
    taken = f"http://127.0.0.1:{dev.port}"  # the MFA server itself, not a stand-in
    other = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env=dev_env(tmp_path, PORT=str(free_port()), TWILIO_API_BASE_URL=taken))
    assert other.returncode != 0
    assert f"{taken} is already in use by something that is not the Twilio stand-in (HTTP 404" in (
        other.stdout + other.stderr)


def test_a_second_server_of_the_same_instance_shares_the_stand_in_and_says_so(dev):
    second = DevServer(dev.folder / "instance", PORT=str(free_port()),
                       TWILIO_API_BASE_URL=f"http://127.0.0.1:{dev.standin_port}")
    try:
        banner = second.wait_for_banner()
    finally:
        second.stop()
    assert (f"Twilio stand-in: http://127.0.0.1:{dev.standin_port} (already running there, started by "
            f"python app.py on http://127.0.0.1:{dev.port}") in banner
    assert "shared with it" in banner


# A clone has nothing beside it: no file of the repository may lean on a sibling folder.
OUTSIDE = re.compile(r"\.\./shared|/work/")
TEXT_FILES = ("*.py", "*.md", "*.html", "*.js", "*.css", "*.ini", "*.toml", "*.txt", "*.cfg", "Makefile", "Procfile")


def test_no_file_in_the_repository_reads_or_links_outside_it():
    leaning = []
    for pattern in TEXT_FILES:
        for path in ROOT.rglob(pattern):
            parts = path.relative_to(ROOT).parts
            if parts[0] in ("node_modules", "instance") or parts[0].startswith(".venv") or path == Path(__file__):
                continue
            leaning += [f"{path.relative_to(ROOT)}: {line.strip()}"
                        for line in path.read_text(errors="replace").splitlines() if OUTSIDE.search(line)]
    assert leaning == []


def test_the_extract_of_twilios_api_description_is_in_the_repository_with_its_licence():
    folder = ROOT / "tests" / "data"
    forms = json.loads((folder / "twilio_request_forms.json").read_text())
    assert "/2010-04-01/Accounts/{AccountSid}/Calls.json" in forms["paths"]
    assert (folder / "twilio-oai-LICENSE").read_text().startswith("MIT License")
    assert "Copyright (C) 2023, Twilio, Inc." in (folder / "twilio-oai-LICENSE").read_text()
