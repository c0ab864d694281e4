"""The documented deployment, run: deploy/nginx/mfa.conf in front of two production-mode
instances started as deploy/systemd/mfa@.service starts them (`python -m ops.serve`, PORT,
a runtime directory of its own).

The nginx config is used as written except for the values its header lists (host name,
ports, certificate, instance addresses, log path), so these tests prove the documented
file: TLS, request ids on both sides, signed webhooks through the proxy, kept-alive
upstream connections, and a rolling restart without one failed request.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from bench.database import recreate_postgresql
from bench.server import ROOT, Gunicorn, free_port
from edge import HSTS
from tests.conftest import TEST_DATA_KEY
from tests.helpers import sign_webhook

CONF = ROOT / "deploy" / "nginx" / "mfa.conf"
UNITS = ROOT / "deploy" / "systemd"
AUTH_TOKEN = "deploy-test-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
FAIL_TIMEOUT = 5  # the upstream's fail_timeout in mfa.conf; the rolling restart waits this long


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


# --- a certificate, the database, the instances, nginx ------------------------------------------


def certificate_and_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate it signed for 127.0.0.1: (certificate, key, CA certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def issue(subject: str, key, issuer: str, issuer_key, *extensions) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - day).not_valid_after(now + day))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("deploy test CA", ca_key, "deploy test CA", ca_key,
               (x509.BasicConstraints(ca=True, path_length=0), True),
               (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
               (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False))
    leaf = issue("127.0.0.1", key, "deploy test CA", ca_key,
                 (x509.BasicConstraints(ca=False, path_length=None), True),
                 (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
                 (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                 (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False))
    pem = serialization.Encoding.PEM
    paths = directory / "fullchain.pem", directory / "privkey.pem", directory / "ca.pem"
    paths[0].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths[1].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths[2].write_bytes(ca.public_bytes(pem))
    return paths


def deploy_database(tmp: Path) -> str:
    """PostgreSQL beside TEST_DATABASE_URL's (its own database, emptied each run), else a SQLite file."""
    if not os.environ.get("TEST_DATABASE_URL"):
        return f"sqlite:///{tmp / 'mfa.sqlite3'}"
    url = make_url(os.environ["TEST_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))
    own, _version = recreate_postgresql(url.set(database=f"{url.database}_deploy"), url.database)
    return own


class Instance(Gunicorn):
    """One instance as mfa@<port>.service runs it: PORT, its own runtime directory (metrics and
    gunicorn's control socket), ops.serve. Stopped by SIGTERM to the main process only, as
    systemd's KillMode=mixed does."""

    def __init__(self, env: dict, port: int, runtime: Path, log_path: Path):
        runtime.mkdir()
        super().__init__({**env, "PORT": str(port), "RUNTIME_DIRECTORY": str(runtime),
                          "PROMETHEUS_MULTIPROC_DIR": str(runtime), "WEB_CONCURRENCY": "2",
                          "GUNICORN_THREADS": "4"}, port=port, log_path=log_path)
        self.runtime = runtime

    def command(self) -> list[str]:
        return [sys.executable, "-m", "ops.serve"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)  # the unit's TimeoutStopSec
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None and not isinstance(self._log, int):
            self._log.close()
            self._log = None


def render(conf: str, values: dict[str, str]) -> str:
    """The documented config with the values its header lists replaced, each of which must be
    found outside comments (so a renamed value cannot silently go untested)."""
    code = "\n".join(line for line in conf.splitlines() if not line.lstrip().startswith("#"))
    for documented, ours in values.items():
        assert documented in code, f"{documented!r} is no longer in {CONF.name}: update the test and the docs"
        conf = conf.replace(documented, ours)
    return conf


class Nginx:
    """nginx with its own prefix: a small main config around the rendered site file, as Debian's
    /etc/nginx/nginx.conf includes conf.d/*.conf inside http { }."""

    def __init__(self, binary: str, prefix: Path, site: str, port: int):
        self.binary, self.prefix, self.port = binary, prefix, port
        (prefix / "logs").mkdir(parents=True)
        (prefix / "mfa.conf").write_text(site)
        temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # One worker: the kept-alive connection count below is then nginx's whole count.
        self.main = prefix / "nginx.conf"
        self.main.write_text(f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'};\n"
                             f"events {{ worker_connections 256; }}\n"
                             f"http {{\n{temp}\n    include {prefix / 'mfa.conf'};\n}}\n")
        self.process: subprocess.Popen | None = None

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "-p", str(self.prefix), "-c", str(self.main), *args],
                              capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        with open(self.prefix / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen([self.binary, "-p", str(self.prefix), "-c", str(self.main),
                                             "-g", "daemon off;"], stderr=stderr)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.prefix / 'stderr.log').read_text()}")
            if (self.prefix / "nginx.pid").exists():
                return
            time.sleep(0.05)
        raise RuntimeError("nginx did not start within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; scripts/install-test-tools does it as root)")
    tmp = tmp_path_factory.mktemp("deploy")
    cert, key, ca = certificate_and_ca(tmp)
    https_port, http_port = free_port(), free_port()
    public = f"https://127.0.0.1:{https_port}"
    env = {"MFA_ENV": "production", "DATABASE_URL": deploy_database(tmp), "SECRET_KEY": "deploy-test-secret-key",
           "DATA_KEY": TEST_DATA_KEY, "PUBLIC_BASE_URL": public, "TRUSTED_PROXIES": "1",
           "TELEPHONY_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_FROM_NUMBER": "+441134960000", "TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # never called here
           "INSTANCE_PATH": str(tmp / "instance"), "LOG_FORMAT": "json"}
    env.pop("REDIS_URL", None)
    # The release step, as mfa-release.service runs it.
    released = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert released.returncode == 0, released.stderr
    a, b = (Instance(env, port, tmp / f"run-{port}", tmp / f"mfa-{port}.log") for port in (free_port(), free_port()))
    site = render(CONF.read_text(), {
        "server_name mfa.example.org;": "server_name 127.0.0.1;",
        "return 301 https://mfa.example.org$request_uri;": "return 301 https://127.0.0.1$request_uri;",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "/etc/ssl/mfa/fullchain.pem": str(cert),
        "/etc/ssl/mfa/privkey.pem": str(key),
        "127.0.0.1:8001": f"127.0.0.1:{a.port}",
        "127.0.0.1:8002": f"127.0.0.1:{b.port}",
        "/var/log/nginx/mfa.access.log": str(tmp / "nginx" / "logs" / "mfa.access.log"),
    })
    nginx = Nginx(binary, tmp / "nginx", site, https_port)
    try:
        for instance in (a.launch(), b.launch()):
            instance.wait_ready(timeout=60)
        nginx.start()
        http = requests.Session()
        http.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise win over verify
        http.verify = str(ca)
        yield {"a": a, "b": b, "nginx": nginx, "public": public, "http": http,
               "access_log": tmp / "nginx" / "logs" / "mfa.access.log"}
    finally:
        nginx.stop()
        a.stop()
        b.stop()


def nginx_log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def app_log_records(instance: Instance) -> list[dict]:
    assert instance.log_path is not None
    records = []
    for line in instance.log_path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"unparsed": line})
    return records


# --- the config itself ---------------------------------------------------------------------------


def test_the_documented_config_passes_nginx_t(deployment):
    checked = deployment["nginx"].run("-t")
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_each_instance_has_a_control_socket_of_its_own(deployment):
    a, b = deployment["a"], deployment["b"]
    assert (a.runtime / f"gunicorn-{a.port}.ctl").is_socket()
    assert (b.runtime / f"gunicorn-{b.port}.ctl").is_socket()


# --- through nginx -------------------------------------------------------------------------------


def test_readyz_through_nginx_carries_the_request_id_nginx_logged_and_the_app_logged(deployment):
    answer = deployment["http"].get(deployment["public"] + "/readyz", timeout=10)
    assert answer.status_code == 200, answer.text
    request_id = answer.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id, passed on by the /readyz location
    assert answer.headers["Strict-Transport-Security"] == HSTS  # once: nginx's, the app's hidden
    time.sleep(0.2)  # nginx writes its access line as the request ends
    logged = [line for line in nginx_log_lines(deployment["access_log"]) if f"request_id={request_id}" in line]
    assert len(logged) == 1 and "GET /readyz" in logged[0] and " 200 " in logged[0]
    upstream = re.search(r"upstream=127\.0\.0\.1:(\d+)", logged[0])
    assert upstream is not None
    instance = deployment["a"] if int(upstream[1]) == deployment["a"].port else deployment["b"]
    assert any(r.get("request_id") == request_id and r.get("path") == "/readyz" for r in app_log_records(instance))


@pytest.mark.parametrize("path, params", [
    ("/twilio/voice/status?challenge=nope", {"AccountSid": ACCOUNT_SID, "CallSid": "CA1", "CallStatus": "busy"}),
    ("/twilio/sms/status", {"AccountSid": ACCOUNT_SID, "MessageSid": "SM1", "MessageStatus": "failed"}),
])
def test_a_signed_webhook_through_nginx_is_accepted_and_a_forged_one_refused(deployment, path, params):
    url = deployment["public"] + path  # PUBLIC_BASE_URL + path + query, as Twilio signs it
    signed = deployment["http"].post(url, data=params, headers=sign_webhook(AUTH_TOKEN, url, params), timeout=10)
    assert signed.status_code == 204, signed.text
    forged = deployment["http"].post(url, data=params, headers=sign_webhook("not-the-token", url, params), timeout=10)
    assert forged.status_code == 403


def test_http_is_redirected_to_https(deployment):
    listen = re.search(r"listen 127\.0\.0\.1:(\d+);", (deployment["nginx"].prefix / "mfa.conf").read_text())
    assert listen is not None
    port = int(listen[1])
    answer = requests.get(f"http://127.0.0.1:{port}/sign-in", allow_redirects=False, timeout=10)
    assert answer.status_code == 301 and answer.headers["Location"].startswith("https://127.0.0.1/sign-in")
    # To the public name, whatever Host the client sent: never an open redirect to another site.
    forged = requests.get(f"http://127.0.0.1:{port}/sign-in", headers={"Host": "evil.example"},
                          allow_redirects=False, timeout=10)
    assert forged.headers["Location"] == "https://127.0.0.1/sign-in"


# --- keep-alive ----------------------------------------------------------------------------------

TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT"}


def tcp_connections(ports: set[int]) -> dict[str, set[tuple[int, int]]]:
    """(local port, remote port) of IPv4 TCP connections with an instance port on either side."""
    found: dict[str, set[tuple[int, int]]] = {"ESTABLISHED": set(), "TIME_WAIT": set()}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[3]
        if state in TCP_STATES and (local in ports or remote in ports):
            found[TCP_STATES[state]].add((local, remote))
    return found


def test_nginx_keeps_its_connections_to_the_instances_open(deployment):
    ports = {deployment["a"].port, deployment["b"].port}
    before = tcp_connections(ports)
    for _ in range(20):
        assert deployment["http"].get(deployment["public"] + "/healthz", timeout=10).status_code == 200
    after = tcp_connections(ports)
    # Each connection shows twice (nginx's end and gunicorn's); without keepalive there would be
    # none open and about 20 new ones closing (TIME_WAIT).
    nginx_ends = {(local, remote) for local, remote in after["ESTABLISHED"] if remote in ports}
    assert 1 <= len(nginx_ends) <= 4, after
    assert len(after["TIME_WAIT"] - before["TIME_WAIT"]) <= 2


# --- the rolling restart -------------------------------------------------------------------------


class Probe(threading.Thread):
    """GETs /readyz and the sign-in page through nginx in a loop, remembering every answer."""

    def __init__(self, public: str, verify: str):
        super().__init__(daemon=True)
        self.public, self.verify = public, verify
        self.answers: list[tuple[str, int | str]] = []
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        http = requests.Session()
        http.trust_env = False
        http.verify = self.verify
        while self.running.is_set():
            for path in ("/readyz", "/sign-in"):
                try:
                    self.answers.append((path, http.get(self.public + path, timeout=10).status_code))
                except requests.RequestException as error:
                    self.answers.append((path, type(error).__name__))
            time.sleep(0.02)

    def stop(self) -> list[tuple[str, int | str]]:
        self.running.clear()
        self.join(timeout=15)
        return self.answers


def test_a_rolling_restart_fails_no_request(deployment):
    """docs/deploy.md's procedure: stop one instance (SIGTERM), start it, wait for its /readyz
    and then fail_timeout, so nginx uses it again; then the other."""
    assert f"fail_timeout={FAIL_TIMEOUT}s" in CONF.read_text()
    probe = Probe(deployment["public"], deployment["http"].verify)
    probe.start()
    try:
        for instance in (deployment["a"], deployment["b"]):
            time.sleep(0.5)
            instance.stop()
            time.sleep(0.5)  # requests meanwhile go to the other instance
            instance.launch().wait_ready(timeout=60)
            time.sleep(FAIL_TIMEOUT + 0.5)
    finally:
        answers = probe.stop()
    failed = [answer for answer in answers if answer[1] != 200]
    print(f"rolling restart: {len(answers)} probes, {len(failed)} failed")
    assert len(answers) >= 100
    assert failed == []


# --- the systemd units ---------------------------------------------------------------------------


def unit(name: str):
    import configparser

    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def test_the_instance_unit_runs_one_loopback_instance_per_port_as_documented():
    service = unit("mfa@.service")["Service"]
    assert service["User"] == "mfa" and service["WorkingDirectory"] == "/opt/mfa/current"
    assert service["EnvironmentFile"] == "/etc/mfa/mfa.env"
    assert service["RuntimeDirectory"] == "mfa-%i"
    # Per instance on the command line, where mfa.env (which wins over Environment=) cannot undo them.
    assert service["ExecStart"] == ("/usr/bin/env PORT=%i PROMETHEUS_MULTIPROC_DIR=/run/mfa-%i "
                                    "/opt/mfa/current/.venv/bin/python -m ops.serve")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert (service["KillSignal"], service["KillMode"], service["Restart"]) == ("SIGTERM", "mixed", "on-failure")
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert not [line for line in (UNITS / "mfa@.service").read_text().splitlines() if line.startswith("Environment=")]
    # Longer than gunicorn's graceful_timeout, so systemd never kills requests it is finishing.
    assert int(service["TimeoutStopSec"]) > 30


def test_the_release_unit_migrates_once():
    service = unit("mfa-release.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"] == "/opt/mfa/current/.venv/bin/flask --app app db upgrade"


@pytest.mark.parametrize("name, instance", [("mfa@.service", "mfa@8001.service"),
                                            ("mfa-release.service", "mfa-release.service"),
                                            ("mfa-prune.service", "mfa-prune.service")])
def test_systemd_accepts_the_units(tmp_path, name, instance):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units are only parsed (tests above)")
    # The units as written, with the release's folder here (verify wants its programs to exist).
    text = (UNITS / name).read_text().replace("/opt/mfa/current/.venv/bin", str(Path(sys.executable).parent))
    (tmp_path / instance).write_text(text.replace("/opt/mfa/current", str(ROOT)))
    verified = subprocess.run([analyze, "verify", str(tmp_path / instance)], capture_output=True, text=True,
                              timeout=60)
    assert (verified.returncode, verified.stderr.strip()) == (0, "")


def test_the_procfile_shown_in_the_deploy_docs_is_the_real_one():
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f"```\n{(ROOT / 'Procfile').read_text().strip()}\n```" in docs
