"""The benchmark's yardstick: the cheapest useful request this stack can serve.

GET /bench/reference/<user_id> reads one row by primary key through the same engine,
session, hooks and gunicorn settings as every other request, and answers small JSON.
bench/ reports each scenario's throughput as a ratio to it, which says more across
machines than raw requests per second. Only registered with BENCH_REFERENCE_ENDPOINT=true,
which production refuses.
"""
from __future__ import annotations

from flask import Flask, jsonify

from edge import db
from models import User


def register(app: Flask) -> None:
    @app.get("/bench/reference/<user_id>")
    def bench_reference(user_id: str):
        user = db().get(User, user_id)
        if user is None:
            return jsonify({"error": "not_found"}), 404
        return jsonify({"id": user.id, "role": user.role})
