"""The bare reference: the same Flask, SQLAlchemy and gunicorn, and none of the project's own
middleware (no request id, access log, metrics, API key, session cookie or error pages).

GET /bench/bare/<user_id> reads one `users` row by primary key through an engine and
session factory made exactly as the app makes them (models/database.py) and answers
{"id", "role"}, like ops/reference.py. bench/ serves it under gunicorn with the same
config and worker/thread counts as the app, in the same run, and reports every ratio
against it too: the in-stack reference shows what the project's hooks cost on every
request; this one shows what the whole stack costs over plain Flask.

    gunicorn -c python:ops.gunicorn_config 'bench.bare_app:create_app()'   # DATABASE_URL set
"""
from __future__ import annotations

import os

from flask import Flask, g, jsonify

from models import User
from models.database import make_engine, make_session_factory

BARE_PATH = "/bench/bare/"


def create_app(database_url: str | None = None) -> Flask:
    app = Flask(__name__)
    engine = make_engine(database_url or os.environ["DATABASE_URL"])
    app.extensions["bare_engine"] = engine  # for whoever disposes of it (tests)
    sessions = make_session_factory(engine)

    @app.get(BARE_PATH + "<user_id>")
    def bare_reference(user_id: str):
        if "db" not in g:
            g.db = sessions()
        user = g.db.get(User, user_id)
        if user is None:
            return jsonify({"error": "not_found"}), 404
        return jsonify({"id": user.id, "role": user.role})

    @app.get("/readyz")
    def ready():
        return "ok"

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()

    return app
