"""Operations: health and readiness, metrics, logging (see issue 6)."""
from __future__ import annotations

from flask import Flask, jsonify


def register(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})
