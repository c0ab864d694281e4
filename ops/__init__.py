"""Operations: health and readiness, Prometheus metrics, request ids and structured logs.

Everything here is wired by register(app), which create_app calls last. See docs/deploy.md.
"""
from __future__ import annotations

from flask import Flask

from ops import health, logs, metrics, reference


def register(app: Flask) -> None:
    settings = app.extensions["mfa"].settings
    logs.register(app, settings.log_format)  # its before_request runs first and starts the clock
    metrics.register(app, settings.prometheus_multiproc_dir)
    health.register(app)
    if settings.bench_reference_endpoint:
        reference.register(app)
