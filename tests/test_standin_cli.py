"""`python -m standin` on the port the app looks for, and its webhooks to an https app behind a
self-signed certificate: refused (Twilio error 11205, one log line) until REQUESTS_CA_BUNDLE
names the certificate; then a production-mode server (MFA_ENV=production, TELEPHONY_PROVIDER=twilio)
signs a person in by call through it (docs/telephony.md, "Using the stand-in with a
production-mode server")."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from devserver import dev_defaults
from mfa import api_keys
from ops import logs
from settings import SIMULATOR_API_BASE_URL
from standin.__main__ import build_parser
from tests.conftest import run_in
from tests.helpers import LiveApi, ring, start_sign_in, state
from tests.standin_helpers import (  # noqa: F401  (fixtures)
    ACCOUNT_SID, AUTH_TOKEN, CALLEE, CALLER, network, standin, twilio, twiml,
)

ANSWER = twiml("<Say>Hello from the https app.</Say><Hangup/>")


def test_the_standin_listens_by_default_where_the_app_and_the_dev_server_look_for_it():
    port = build_parser().parse_args([]).port
    assert port == 5001
    assert urlsplit(SIMULATOR_API_BASE_URL).port == port
    assert urlsplit(dev_defaults({})["TWILIO_API_BASE_URL"]).port == port


def self_signed_certificate(folder) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by itself, as a staging nginx might have."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mfa.staging.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


class HttpsServer:
    """A WSGI app on https with the self-signed certificate; the port is known before the app
    exists (a production server's PUBLIC_BASE_URL must name it)."""

    def __init__(self, certificate: tuple[str, str]):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self.app: Any = None
        self.api: LiveApi  # set by whoever starts it: the JSON API client of this server
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True, ssl_context=context)
        self.url = f"https://127.0.0.1:{self._server.server_port}"

    def _dispatch(self, environ, start_response):
        body = self.app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    def start(self, app) -> HttpsServer:
        self.app = app
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def https_app(certificate):
    """An app answering TwiML over https with a self-signed certificate; yields (url, cert file)."""
    app = Flask("https_app")
    app.add_url_rule("/answer", "answer", lambda: (ANSWER, 200, {"Content-Type": "text/xml"}),
                     methods=["POST"])
    server = HttpsServer(certificate).start(app)
    yield f"{server.url}/answer", certificate[0]
    server.stop()


@pytest.fixture
def trust_nothing_extra(monkeypatch):
    """This machine may point requests at its own CA list; the stand-in must start from none."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def call_answered_by(twilio, network, url: str):
    sid = twilio.calls.create(to=CALLEE, from_=CALLER, url=url).sid
    network.wait_idle()
    return network.answer(sid)


def test_without_the_certificate_the_answer_webhook_fails_with_11205_and_one_log_line(
        twilio, network, https_app, trust_nothing_extra, caplog):
    url, _ = https_app
    with caplog.at_level(logging.WARNING, logger="standin.webhooks"):
        call = call_answered_by(twilio, network, url)
    errors = [event[1] for event in call.transcript if event[0] == "error"]
    assert len(errors) == 1 and errors[0].startswith("11205 ")
    assert not any(event[0] == "say" for event in call.transcript)
    lines = [record.getMessage() for record in caplog.records if record.name == "standin.webhooks"]
    assert len(lines) == 1
    assert f"11205 HTTP connection failure: POST {url}: " in lines[0]
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0] and "\n" not in lines[0]
    assert "Max retries exceeded" not in lines[0]  # the TLS reason, not requests' wrapper


def test_with_requests_ca_bundle_naming_the_certificate_the_call_goes_through(
        twilio, network, https_app, trust_nothing_extra, monkeypatch, caplog):
    url, cert_file = https_app
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert_file)
    with caplog.at_level(logging.WARNING, logger="standin.webhooks"):
        call = call_answered_by(twilio, network, url)
    assert ("say", "Hello from the https app.") in [event[:2] for event in call.transcript]
    assert not [event for event in call.transcript if event[0] == "error"]
    assert not [record for record in caplog.records if record.name == "standin.webhooks"]


# --- a production-mode server behind TLS, with the stand-in as its Twilio -------------------


@pytest.fixture
def production_server(app_config, certificate, standin, alice):
    """MFA_ENV=production and TELEPHONY_PROVIDER=twilio, as docs/telephony.md sets them up: the
    stand-in's account and token, TWILIO_API_BASE_URL at the stand-in, an https PUBLIC_BASE_URL."""
    server = HttpsServer(certificate)
    app = create_app({
        **app_config,
        "MFA_ENV": "production",
        "TELEPHONY_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+441632960000",
        "TWILIO_API_BASE_URL": standin.url,
        "PUBLIC_BASE_URL": server.url,
    })
    server.start(app)
    server.api = LiveApi(server.url, run_in(app, lambda db, svc: api_keys.create(db, svc, "staging")))
    server.api.http.verify = certificate[0]  # the relying application trusts the certificate too
    yield server
    standin.network.wait_idle()
    server.stop()
    logs.remove_handler()  # production installed its JSON log handler on the root logger
    app.extensions["mfa"].engine.dispose()


def test_a_production_server_behind_a_self_signed_certificate_signs_in_by_call_when_the_standin_trusts_it(
        production_server, network, certificate, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    auth = start_sign_in(production_server.api, "alice", expect="mfa_required")
    sid = ring(production_server, network, auth)
    network.answer(sid)
    network.press(sid, "#")
    network.wait_idle()
    assert state(production_server, auth)["status"] == "approved"


def test_without_the_certificate_the_call_ends_with_11205_and_the_sign_in_stays_pending(
        production_server, network, trust_nothing_extra, caplog):
    auth = start_sign_in(production_server.api, "alice", expect="mfa_required")
    with caplog.at_level(logging.WARNING, logger="standin.webhooks"):
        sid = ring(production_server, network, auth)
        call = network.answer(sid)
        network.wait_idle()
    assert call.status == "completed"
    assert [e[1][:6] for e in call.transcript if e[0] == "error"] == ["11205 "]
    assert state(production_server, auth)["status"] == "pending"
    lines = [r.getMessage() for r in caplog.records if r.name == "standin.webhooks"]
    answer_url = f"POST {production_server.url}/twilio/voice/answer?"
    assert any(answer_url in line and "CERTIFICATE_VERIFY_FAILED" in line for line in lines), lines
