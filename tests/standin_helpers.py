"""Fixtures for the stand-in's own tests: the stand-in on a real port, a tiny customer app that
answers TwiML we choose and records what it receives, and the real twilio SDK pointed at it.

Test modules import the fixtures they use by name (`from tests.standin_helpers import ...`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from flask import Flask, Request, Response, request
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import make_server

from standin import StandinServer, create_standin_app

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "standin-test-auth-token"
CALLEE = "+447700900123"
CALLER = "+15005550006"
WAV = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00\x80>\x00\x00" \
      b"\x02\x00\x10\x00data\x00\x00\x00\x00"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    url: str
    form: dict
    args: dict
    headers: dict
    signature_valid: bool  # checked against request.url, as Twilio's Flask recipe does
    raw_signature_valid: bool  # checked against the path and query exactly as sent


class Customer:
    """The app under test, reduced to: path -> TwiML (or a function of the request)."""

    def __init__(self):
        self.routes: dict[str, tuple[Any, int, str]] = {}
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._validator = RequestValidator(AUTH_TOKEN)
        app = Flask("customer")
        app.add_url_rule("/", "any", self._handle, defaults={"path": ""},
                         methods=["GET", "POST"])
        app.add_url_rule("/<path:path>", "any", self._handle, methods=["GET", "POST"])
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> Customer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def serve(self, path: str, body: str | bytes | Callable[[Request], str], *,
              status: int = 200, content_type: str = "text/xml") -> None:
        self.routes[path] = (body, status, content_type)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path in (None, r.path)]

    def _handle(self, path: str) -> Response:
        signature = request.headers.get("X-Twilio-Signature", "")
        query = request.query_string.decode("latin-1")
        raw_url = self.base_url + request.path + ("?" + query if query else "")
        with self._lock:
            self._received.append(Received(
                method=request.method, path="/" + path, url=request.url,
                form=request.form.to_dict(), args=request.args.to_dict(),
                headers=dict(request.headers),
                signature_valid=self._validator.validate(request.url, request.form, signature),
                raw_signature_valid=self._validator.validate(raw_url, request.form, signature),
            ))
        if "/" + path not in self.routes:
            return Response("", 204)  # status callbacks: any 2xx will do
        body, status, content_type = self.routes["/" + path]
        if callable(body):
            body = body(request)
        return Response(body, status, content_type=content_type)


@pytest.fixture
def standin():
    server = StandinServer(create_standin_app(ACCOUNT_SID, AUTH_TOKEN, realtime=False))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def network(standin):
    return standin.network


@pytest.fixture
def customer():
    app = Customer().start()
    yield app
    app.stop()


@pytest.fixture
def twilio(standin) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = standin.url
    return client


def twiml(*verbs: str) -> str:
    return "<?xml version='1.0' encoding='UTF-8'?><Response>" + "".join(verbs) + "</Response>"


def place_call(twilio: Client, customer: Customer, *, to: str = CALLEE,
               answer_path: str = "/answer", **options) -> str:
    call = twilio.calls.create(to=to, from_=CALLER, url=customer.url(answer_path), **options)
    return call.sid


def ringing_call(twilio: Client, customer: Customer, network, answer_path: str = "/answer",
                 **options) -> str:
    sid = place_call(twilio, customer, answer_path=answer_path, **options)
    network.wait_idle()
    return sid


def answered_call(twilio: Client, customer: Customer, network, answer_path: str = "/answer",
                  **options) -> str:
    sid = ringing_call(twilio, customer, network, answer_path, **options)
    network.answer(sid)
    return sid
