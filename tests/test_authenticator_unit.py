"""The reference authenticator on its own: signatures, the loopback push endpoint with the real pywebpush,
the client and CLI against a small fake device server (this file's), and the state file."""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pywebpush  # type: ignore[import-untyped, unused-ignore]
from py_vapid import Vapid01, Vapid02  # type: ignore[import-untyped, unused-ignore]

from authenticator import signing, state
from authenticator.client import Device, DeviceError, Refused, parse_enrolment_url
from authenticator.push_endpoint import LocalPushEndpoint, PushKeys

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_764_000_000
NONCE = "AAAAAAAAAAAAAAAAAAAAAA"
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


# -- signing ------------------------------------------------------------------------------------------------

def test_canonical_string_is_exactly_the_spec_layout():
    body = b'{"number":"42"}'
    expected = (f"MFA-DEVICE-V1\nPOST\n/device/v1/requests/r1/approve\n{hashlib.sha256(body).hexdigest()}\n"
                f"{NOW}\n{NONCE}\ndev-1").encode()
    assert signing.canonical("post", "/device/v1/requests/r1/approve", body, NOW, NONCE, "dev-1") == expected
    empty = signing.canonical("GET", "/device/v1/requests", b"", NOW, NONCE, "")
    assert empty.split(b"\n")[3] == b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert empty.endswith(b"\n")  # the empty device id of an enrolment is still a field


def test_signature_verifies_over_the_canonical_string_and_headers_are_well_formed():
    key = signing.new_private_key()
    headers = signing.sign_request(key, "POST", "/device/v1/enrol", b"{}", "", now=NOW, nonce=NONCE)
    assert headers["X-Device-Id"] == "" and headers["X-Device-Timestamp"] == str(NOW)
    assert headers["X-Device-Nonce"] == NONCE
    signature = headers["X-Device-Signature"]
    assert B64URL.match(signature) and "=" not in signature and len(signing.b64url_decode(signature)) == 64
    message = signing.canonical("POST", "/device/v1/enrol", b"{}", NOW, NONCE, "")
    assert signing.verify_raw_signature(signing.public_key_b64(key), signing.b64url_decode(signature), message)
    assert len(signing.b64url_decode(signing.public_key_b64(key))) == 65


@pytest.mark.parametrize("field", ["method", "path", "body", "timestamp", "nonce", "device_id"])
def test_changing_any_signed_field_breaks_the_signature(field):
    key = signing.new_private_key()
    fields: dict[str, Any] = {"method": "POST", "path": "/device/v1/requests/r1/deny", "body": b'{"fraud":false}',
                              "timestamp": NOW, "nonce": NONCE, "device_id": "dev-1"}
    headers = signing.sign_request(key, fields["method"], fields["path"], fields["body"], fields["device_id"],
                                   now=NOW, nonce=NONCE)
    signature = signing.b64url_decode(headers["X-Device-Signature"])
    public = signing.public_key_b64(key)
    assert signing.verify_raw_signature(public, signature, signing.canonical(**fields))
    changed = {"method": "PUT", "path": "/device/v1/requests/r2/deny", "body": b'{"fraud":true}',
               "timestamp": NOW + 1, "nonce": "B" + NONCE[1:], "device_id": "dev-2"}
    assert not signing.verify_raw_signature(public, signature, signing.canonical(**{**fields, field: changed[field]}))
    assert not signing.verify_raw_signature(signing.public_key_b64(signing.new_private_key()), signature,
                                            signing.canonical(**fields))


def test_default_nonces_are_fresh_and_in_the_allowed_charset():
    key = signing.new_private_key()
    first, second = (signing.sign_request(key, "GET", "/device/v1/requests", b"", "d") for _ in range(2))
    assert first["X-Device-Nonce"] != second["X-Device-Nonce"]
    assert signing.NONCE_PATTERN.match(first["X-Device-Nonce"])
    assert abs(int(first["X-Device-Timestamp"]) - time.time()) < 5
    assert first["X-Device-Signature"] != second["X-Device-Signature"]


def test_enrolment_url_gives_base_and_token():
    assert parse_enrolment_url("https://mfa.example.org/app#enrol=abc_-1") == ("https://mfa.example.org", "abc_-1")
    assert parse_enrolment_url("http://h:8080/prefix/app#enrol=t") == ("http://h:8080/prefix", "t")
    for bad in ["mfa.example.org/app#enrol=t", "https://h/app#token=t", "https://h/other#enrol=t", "https://h/app#enrol="]:
        with pytest.raises(DeviceError):
            parse_enrolment_url(bad)


# -- the push endpoint, with the real pywebpush ---------------------------------------------------------------

@pytest.fixture
def endpoint():
    with LocalPushEndpoint() as listening:
        yield listening


@pytest.fixture
def vapid():
    key = Vapid02()
    key.generate_keys()
    return key


def push(subscription, payload, vapid_key, claims=None):
    return pywebpush.webpush(subscription_info=subscription, data=json.dumps(payload), vapid_private_key=vapid_key,
                             vapid_claims=claims if claims is not None else {"sub": "mailto:ops@example.org"},
                             timeout=5)


def test_pywebpush_message_is_decrypted_exactly_and_its_vapid_header_checked(endpoint, vapid):
    payload = {"type": "sign_in_request", "request_id": "r1", "title": "Sign-in request for Ex", "app": "Ünïcode"}
    response = push(endpoint.subscription(), payload, vapid)
    assert response.status_code == 201
    assert endpoint.wait_for_message(timeout=5) == payload and endpoint.received == [payload]
    [auth] = endpoint.authorizations
    assert auth.header.startswith("vapid t=")
    assert auth.public_key == signing.public_key_b64(vapid.public_key)
    assert auth.claims["aud"] == endpoint.origin == f"http://127.0.0.1:{endpoint.port}"
    assert auth.claims["sub"] == "mailto:ops@example.org"


def test_subscription_has_the_browser_shape(endpoint):
    subscription = endpoint.subscription()
    assert subscription["endpoint"].startswith(f"http://127.0.0.1:{endpoint.port}/push/")
    assert len(signing.b64url_decode(subscription["keys"]["p256dh"])) == 65
    assert len(signing.b64url_decode(subscription["keys"]["auth"])) == 16


def test_body_encrypted_for_other_keys_is_refused_and_not_queued(endpoint, vapid):
    other = {**endpoint.subscription(), "keys": PushKeys().public_keys()}
    with pytest.raises(pywebpush.WebPushException) as refused:
        push(other, {"secret": 1}, vapid)
    assert refused.value.response.status_code == 400
    assert endpoint.received == [] and endpoint.rejected[0][0] == 400
    with pytest.raises(TimeoutError):
        endpoint.wait_for_message(timeout=0.05)


@pytest.mark.parametrize("case", ["no_vapid", "wrong_audience", "legacy_webpush_scheme", "bare_sub"])
def test_push_without_a_valid_vapid_header_is_refused(endpoint, vapid, case):
    claims: dict[str, Any] = {"sub": "mailto:ops@example.org"}
    key: Any = vapid
    if case == "wrong_audience":
        claims["aud"] = "https://push.example.net"
    elif case == "legacy_webpush_scheme":
        key = Vapid01()
        key.generate_keys()
    elif case == "bare_sub":  # py_vapid refuses it too unless told not to be strict
        key = Vapid02(conf={"no-strict": True})
        key.generate_keys()
        claims["sub"] = "ops@example.org"
    if case == "no_vapid":
        with pytest.raises(pywebpush.WebPushException) as refused:
            pywebpush.webpush(subscription_info=endpoint.subscription(), data="{}", timeout=5)
    else:
        with pytest.raises(pywebpush.WebPushException) as refused:
            push(endpoint.subscription(), {"x": 1}, key, claims)
    assert refused.value.response.status_code == 401
    assert endpoint.received == [] and endpoint.authorizations == []


def test_expired_vapid_token_is_refused(vapid):
    thirteen_hours_on = LocalPushEndpoint(now=lambda: time.time() + 13 * 3600)  # pywebpush signs for 12 h
    try:
        with pytest.raises(pywebpush.WebPushException) as refused:
            push(thirteen_hours_on.subscription(), {"x": 1}, vapid)
        assert refused.value.response.status_code == 401 and "exp" in thirteen_hours_on.rejected[0][1]
    finally:
        thirteen_hours_on.close()


def test_payload_over_4096_encrypted_bytes_is_refused_as_a_push_service_would(endpoint, vapid):
    with pytest.raises(pywebpush.WebPushException) as refused:
        push(endpoint.subscription(), {"padding": "x" * 4100}, vapid)
    assert refused.value.response.status_code == 413 and endpoint.received == []
    assert push(endpoint.subscription(), {"padding": "x" * 3900}, vapid).status_code == 201


def test_unknown_subscription_path_is_404(endpoint, vapid):
    wrong = {**endpoint.subscription(), "endpoint": endpoint.origin + "/push/someone-else"}
    with pytest.raises(pywebpush.WebPushException) as refused:
        push(wrong, {"x": 1}, vapid)
    assert refused.value.response.status_code == 404 and endpoint.received == []


# -- a fake device server, enough of PUSH_SPEC to drive the client ---------------------------------------------

class FakeDeviceServer:
    """Checks every signature as the spec says and keeps requests in memory."""

    def __init__(self, service: str = "Example MFA") -> None:
        self.service = service
        self.tokens = {"token-1", "token-2"}
        self.devices: dict[str, str] = {}  # device id -> public key
        self.subscriptions: dict[str, Any] = {}
        self.requests: dict[str, dict[str, Any]] = {}
        self.nonces: set[str] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def enrolment_url(self, token: str = "token-1") -> str:
        return f"{self.base_url}/app#enrol={token}"

    def add_request(self, device_id: str, number: str = "42") -> str:
        request_id = secrets.token_hex(16)  # shaped like the server's ids (32 hex digits): never starts with "-"
        self.requests[request_id] = {"device": device_id, "number": number, "status": "pending"}
        return request_id

    def signer(self, method: str, path: str, body: bytes, headers: Any, public_key: str | None) -> str | None:
        device_id = headers.get("X-Device-Id") or ""
        nonce = headers.get("X-Device-Nonce") or ""
        key = public_key if public_key else self.devices.get(device_id)
        if not key or not signing.NONCE_PATTERN.match(nonce) or nonce in self.nonces:
            return None
        if abs(int(headers.get("X-Device-Timestamp") or 0) - time.time()) > 60:
            return None
        message = signing.canonical(method, path, body, headers["X-Device-Timestamp"], nonce, device_id)
        if not signing.verify_raw_signature(key, signing.b64url_decode(headers.get("X-Device-Signature") or ""),
                                            message):
            return None
        self.nonces.add(nonce)
        return device_id

    def answer(self, method: str, path: str, body: bytes, headers: Any) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/device/v1/config":
            return 200, {"service": self.service, "vapid_public_key": None}
        data = json.loads(body) if body else {}
        public_key = data.get("public_key") if path == "/device/v1/enrol" else None
        device_id = self.signer(method, path, body, headers, public_key)
        if device_id is None:
            return 401, {"error": "invalid_signature", "message": "Bad signature."}
        if path == "/device/v1/enrol":
            if data.get("token") not in self.tokens:
                return 410, {"error": "enrolment_invalid", "message": "Ask for a new enrolment link."}
            self.tokens.discard(data["token"])
            new_id = secrets.token_hex(16)
            self.devices[new_id] = str(public_key)
            self.subscriptions[new_id] = data.get("subscription")
            return 201, {"device_id": new_id, "service": self.service, "username": "alice"}
        if path == "/device/v1/subscription":
            self.subscriptions[device_id] = data.get("subscription")
            return 200, {"ok": True}
        if path == "/device/v1/requests":
            mine = [{"id": i, "service": self.service, "app": "Payroll", "created_at": "2026-12-05T01:00:00Z",
                     "expires_at": "2026-12-05T01:02:00Z", "source_ip": "192.0.2.7"}
                    for i, r in self.requests.items() if r["device"] == device_id and r["status"] == "pending"]
            return 200, {"requests": mine}
        *_, request_id, action = path.split("/")
        request = self.requests.get(request_id)
        if not request or request["device"] != device_id:
            return 404, {"error": "not_found", "message": "No such request."}
        if request["status"] != "pending":
            return 409, {"error": "not_pending", "message": "Too late."}
        if action == "approve" and data.get("number") != request["number"]:
            request["status"] = "denied"
            return 422, {"error": "number_mismatch", "message": "That is not the number on the screen."}
        request["status"] = "approved" if action == "approve" else "fraud_reported" if data["fraud"] else "denied"
        return 200, {"status": request["status"]}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def respond(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, data = fake.answer(self.command, self.path, body, self.headers)
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = respond

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server():
    fake = FakeDeviceServer()
    yield fake
    fake.close()


@pytest.fixture
def other_server():
    fake = FakeDeviceServer(service="Other MFA")
    yield fake
    fake.close()


def cli(state_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "authenticator", "--state", str(state_file), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


# -- the Python API ---------------------------------------------------------------------------------------------

def test_device_enrols_lists_approves_and_denies(server, tmp_path):
    state_file = tmp_path / "state.json"
    device = Device.enrol(server.enrolment_url(), "Test phone", state_file)
    assert device.device_id in server.devices and (device.service, device.username) == ("Example MFA", "alice")
    assert server.devices[device.device_id] == signing.public_key_b64(device.private_key)
    first, second = server.add_request(device.device_id), server.add_request(device.device_id, number="17")
    assert {r["id"] for r in device.pending()} == {first, second}
    assert device.approve(first, 42) == {"status": "approved"}
    with pytest.raises(Refused) as refused:
        device.approve(second, "18")
    assert (refused.value.code, refused.value.status) == ("number_mismatch", 422)
    assert server.requests[second]["status"] == "denied" and device.pending() == []
    third = server.add_request(device.device_id)
    assert device.deny(third, fraud=True) == {"status": "fraud_reported"}
    with pytest.raises(Refused) as late:
        device.deny(third)
    assert late.value.code == "not_pending"
    [reloaded] = Device.load_all(state_file)
    assert reloaded.device_id == device.device_id and reloaded.pending() == []


def test_used_token_is_refused_and_nothing_is_stored(server, tmp_path):
    state_file = tmp_path / "state.json"
    Device.enrol(server.enrolment_url(), "phone", None)
    with pytest.raises(Refused) as refused:
        Device.enrol(server.enrolment_url(), "phone", state_file)
    assert (refused.value.code, refused.value.status) == ("enrolment_invalid", 410)
    assert not state_file.exists()


def test_request_ids_that_would_change_the_path_are_refused_before_sending(server):
    device = Device.enrol(server.enrolment_url(), "phone", None)
    for bad in ["../enrol", "a/b", "x?y=1", "%2e%2e", ""]:
        with pytest.raises(DeviceError):
            device.approve(bad, "42")


# -- state file ----------------------------------------------------------------------------------------------------

def test_state_file_is_written_with_mode_0600(server, tmp_path):
    state_file = tmp_path / "state.json"
    state.save_state(state_file, state.empty_state())
    assert state_file.stat().st_mode & 0o777 == 0o600
    state_file.unlink()
    assert cli(state_file, "enrol", server.enrolment_url()).returncode == 0
    assert state_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind


def test_saved_state_round_trips_the_key(tmp_path):
    key = signing.new_private_key()
    record = Device("http://h", "d1", key).record()
    state.save_state(tmp_path / "s.json", {**state.empty_state(), "enrolments": [record]})
    [device] = Device.load_all(tmp_path / "s.json")
    assert signing.public_key_b64(device.private_key) == signing.public_key_b64(key)


# -- the command line -------------------------------------------------------------------------------------------

def test_cli_full_flow_across_two_servers(server, other_server, tmp_path):
    state_file = tmp_path / "state.json"
    enrolled = cli(state_file, "enrol", server.enrolment_url(), "--name", "CLI phone")
    assert enrolled.returncode == 0, enrolled.stderr
    device_id = enrolled.stdout.strip().splitlines()[-1]
    assert device_id in server.devices
    other_id = cli(state_file, "enrol", other_server.enrolment_url()).stdout.strip().splitlines()[-1]
    here, there = server.add_request(device_id), other_server.add_request(other_id, number="73")
    listed = [json.loads(line) for line in cli(state_file, "pending").stdout.splitlines()]
    assert {(r["id"], r["service"]) for r in listed} == {(here, "Example MFA"), (there, "Other MFA")}
    assert set(listed[0]) >= {"id", "service", "app", "created_at"}
    approved = cli(state_file, "approve", there, "73")
    assert approved.returncode == 0 and other_server.requests[there]["status"] == "approved"
    assert cli(state_file, "deny", here, "--fraud").returncode == 0
    assert server.requests[here]["status"] == "fraud_reported"
    assert cli(state_file, "pending").stdout == ""


def test_cli_refused_approval_is_one_line_with_the_code(server, tmp_path):
    state_file = tmp_path / "state.json"
    device_id = cli(state_file, "enrol", server.enrolment_url()).stdout.strip().splitlines()[-1]
    request_id = server.add_request(device_id, number="42")
    assert_one_line_error(cli(state_file, "approve", request_id, "41"), "refused: number_mismatch: That is not")
    assert_one_line_error(cli(state_file, "approve", "unknown-id", "41"), "refused: not_found")


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    assert_one_line_error(cli(corrupt, "pending"), "not valid JSON")
    wrong_shape = tmp_path / "shape.json"
    wrong_shape.write_text(json.dumps({"version": 1, "enrolments": [{"base_url": "http://h"}]}))
    assert_one_line_error(cli(wrong_shape, "pending"), "malformed")
    bad_key = tmp_path / "key.json"
    unreadable = {"base_url": "h", "device_id": "d", "private_key": "x"}
    bad_key.write_text(json.dumps({"version": 1, "enrolments": [unreadable]}))
    assert_one_line_error(cli(bad_key, "pending"), "private key")
    bad_push = tmp_path / "push.json"
    bad_push.write_text(json.dumps({"version": 1, "enrolments": [], "push": {"endpoint": "http://127.0.0.1:1/p"}}))
    assert_one_line_error(cli(bad_push, "listen", "--count", "0"), "malformed push")
    assert_one_line_error(cli(tmp_path / "new.json", "enrol", "not a url"), "not an enrolment URL")
    assert_one_line_error(cli(tmp_path / "new.json", "enrol", "http://127.0.0.1:1/app#enrol=t"), "cannot reach")
    assert_one_line_error(cli(corrupt, "enrol", "http://127.0.0.1:1/app#enrol=t"), "not valid JSON")
    assert_one_line_error(cli(tmp_path / "new.json", "approve", "only-an-id"), "required")
    assert_one_line_error(cli(tmp_path / "new.json", "frobnicate"), "invalid choice")
    assert_one_line_error(cli(tmp_path / "new.json", "pending"), "no enrolments")
    no_state = subprocess.run([sys.executable, "-m", "authenticator", "pending"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    assert_one_line_error(no_state, "--state")
    assert not (tmp_path / "new.json").exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_push_enrolment_then_listen_prints_the_decrypted_payload(server, vapid, tmp_path):
    state_file = tmp_path / "state.json"
    port = free_port()
    enrolled = cli(state_file, "enrol", server.enrolment_url(), "--push-endpoint", f"http://127.0.0.1:{port}")
    assert enrolled.returncode == 0, enrolled.stderr
    subscription = server.subscriptions[enrolled.stdout.strip().splitlines()[-1]]
    assert subscription["endpoint"].startswith(f"http://127.0.0.1:{port}/push/")
    assert json.loads(state_file.read_text())["push"]["endpoint"] == subscription["endpoint"]
    command = [sys.executable, "-m", "authenticator", "--state", str(state_file), "listen", "--count", "1"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as listener:
        try:
            assert listener.stderr is not None and "listening on" in listener.stderr.readline()
            payload = {"type": "sign_in_request", "request_id": "r9", "service": "Example MFA"}
            assert push(subscription, payload, vapid).status_code == 201
            out, err = listener.communicate(timeout=30)
        finally:
            listener.kill()
    assert listener.returncode == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [payload]


def test_cli_listen_on_a_new_port_sends_the_new_subscription_to_every_server(server, other_server, tmp_path):
    state_file = tmp_path / "state.json"
    first = cli(state_file, "enrol", server.enrolment_url()).stdout.strip().splitlines()[-1]
    second = cli(state_file, "enrol", other_server.enrolment_url()).stdout.strip().splitlines()[-1]
    assert server.subscriptions[first] is None
    port = free_port()
    started = cli(state_file, "listen", "--port", str(port), "--count", "0")
    assert started.returncode == 0, started.stderr
    stored = json.loads(state_file.read_text())["push"]
    assert stored["endpoint"].startswith(f"http://127.0.0.1:{port}/push/")
    assert server.subscriptions[first] == other_server.subscriptions[second]
    assert server.subscriptions[first]["endpoint"] == stored["endpoint"]
    assert server.subscriptions[first]["keys"] == PushKeys.from_record(stored).public_keys()
    requests_so_far = len(server.nonces)
    again = cli(state_file, "listen", "--count", "0")  # same port and path: the keys are kept, nothing re-sent
    assert again.returncode == 0 and json.loads(state_file.read_text())["push"] == stored
    assert len(server.nonces) == requests_so_far
