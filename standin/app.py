"""The stand-in as a WSGI app: Twilio's REST API plus the pages for people, sharing one
simulated Network (app.extensions["standin"])."""

from __future__ import annotations

import os
import socket

from flask import Flask, Response, jsonify

from . import pages, rest
from .network import Network

# Pages load only their own CSS and JS; audio may come from the app under test.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; media-src *; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


# What GET /standin.json says, so a dev server finding its port taken can name what holds it.
IDENTITY = "twilio-standin"


def create_standin_app(account_sid: str, auth_token: str, *, realtime: bool = True,
                       started_by: str = "") -> Flask:
    """realtime=True for people (gather and ring timeouts run on real timers);
    realtime=False for tests (nothing happens by itself in time: call lapse()/ring_out()).
    `started_by` says who runs it (e.g. "python app.py on http://127.0.0.1:5000")."""
    app = Flask(__name__)
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True  # tidy HTML source
    app.extensions["standin"] = Network(account_sid, auth_token, realtime=realtime)
    app.register_blueprint(rest.bp)
    app.register_blueprint(pages.bp)
    rest.api_fallbacks(app)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return app.send_static_file("favicon.ico")

    @app.get("/standin.json")
    def identity() -> Response:
        return jsonify(service=IDENTITY, started_by=started_by, pid=os.getpid(), account_sid=account_sid)
    app.wsgi_app = drop_connections(app.wsgi_app)  # type: ignore[method-assign]  # Flask's documented way

    @app.after_request
    def protect(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return app


def drop_connections(wsgi_app):
    """Carry out the request, then close the connection without a byte of answer when the
    REST blueprint flagged it (Network.drop_next_connections). The development server treats
    the ConnectionResetError as a dropped connection and writes nothing."""

    def middleware(environ, start_response):
        body = wsgi_app(environ, start_response)
        if not environ.get(rest.DROP_CONNECTION):
            return body
        if hasattr(body, "close"):
            body.close()
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        raise ConnectionResetError("stand-in fault: connection dropped after the request")

    return middleware
