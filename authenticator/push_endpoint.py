"""A Web Push receiving endpoint on loopback: the push service and the device in one, for tests and operators.

It answers POSTs as a push service does (201), after checking what a real one checks (VAPID, size,
encoding), then decrypts the body (RFC 8291, aes128gcm) with the subscription keys it made itself.
"""
from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece  # type: ignore[import-untyped, unused-ignore]
from cryptography.hazmat.primitives.asymmetric import ec

from authenticator import state
from authenticator.signing import b64url, b64url_decode, public_key_b64
from authenticator.vapid import VapidAuth, VapidError, verify

MAX_BODY = 4096  # RFC 8291 section 4: push services may refuse larger encrypted payloads


@dataclass
class PushKeys:
    """The subscription's secrets: the ECDH P-256 key (p256dh) and the 16-byte auth secret."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def public_keys(self) -> dict[str, str]:
        return {"p256dh": public_key_b64(self.private_key), "auth": b64url(self.auth_secret)}

    def record(self) -> dict[str, str]:
        return {"private_key": state.key_to_pem(self.private_key), "auth": b64url(self.auth_secret)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PushKeys:
        try:
            auth = b64url_decode(str(record["auth"]))
        except (KeyError, ValueError) as exc:
            raise state.StateError("state file holds an unreadable push auth secret") from exc
        return cls(state.key_from_pem(str(record["private_key"])), auth)


class LocalPushEndpoint:
    """Listens on 127.0.0.1:`port` (0: any free port) at `path` (random unless given) until close()."""

    def __init__(self, port: int = 0, keys: PushKeys | None = None, path: str | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.keys = keys or PushKeys()
        self.path = path or f"/push/{secrets.token_urlsafe(16)}"
        self.now = now
        self.received: list[dict[str, Any]] = []
        self.authorizations: list[VapidAuth] = []
        self.rejected: list[tuple[int, str]] = []  # (status, reason) of every refused POST
        self._messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="push-endpoint", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return self.origin + self.path

    def subscription(self) -> dict[str, Any]:
        """What the browser's JSON.stringify(PushSubscription) gives."""
        return {"endpoint": self.endpoint, "keys": self.keys.public_keys()}

    def wait_for_message(self, timeout: float = 5.0) -> dict[str, Any]:
        try:
            return self._messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no push message within {timeout} s") from None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> LocalPushEndpoint:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def accept(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """(status, reason) for one POST; queues the payload when it is 201."""
        if path != self.path:
            return 404, "no such subscription"
        if headers.get("content-encoding", "").lower() != "aes128gcm":
            return 415, "Content-Encoding must be aes128gcm"
        if len(body) > MAX_BODY:
            return 413, f"payload of {len(body)} bytes is over {MAX_BODY}"
        try:
            auth = verify(headers.get("authorization"), self.origin, self.now())
        except VapidError as exc:
            return 401, str(exc)
        self.authorizations.append(auth)
        try:
            plain = http_ece.decrypt(body, private_key=self.keys.private_key, auth_secret=self.keys.auth_secret,
                                     version="aes128gcm")
            payload = json.loads(plain)
        except Exception as exc:  # http_ece raises ECEException, cryptography InvalidTag, json ValueError
            return 400, f"cannot decrypt the payload to JSON: {type(exc).__name__}"
        if not isinstance(payload, dict):
            return 400, "the payload is not a JSON object"
        self.received.append(payload)
        self._messages.put(payload)
        return 201, "created"


def _handler_for(endpoint: LocalPushEndpoint) -> type[BaseHTTPRequestHandler]:
    class PushHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches to
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit() or int(length) > 4 * MAX_BODY:
                self.send_error(411 if not length.isdigit() else 413)
                return
            body = self.rfile.read(int(length))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, reason = endpoint.accept(self.path, headers, body)
            if status != 201:
                endpoint.rejected.append((status, reason))
            answer = json.dumps({"status": status, "reason": reason}).encode("utf-8")
            self.send_response(status)
            if status == 201:
                self.send_header("Location", f"{endpoint.origin}/message/{secrets.token_urlsafe(8)}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output and the listen command's stdout clean

    return PushHandler
