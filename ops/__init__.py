"""Operations: health and readiness, Prometheus metrics, request ids and structured logs.

Everything here is wired by register(app), which create_app calls last. See docs/deploy.md.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from ops import counters, health, logs, metrics, reference


def register(app: Flask) -> None:
    settings = app.extensions["mfa"].settings
    if settings.trusted_proxies:
        # Behind nginx the peer is the proxy: believe its X-Forwarded-For/-Proto, and no one else's,
        # so audit rows and rate limits see the person's address. Webhook signatures never use
        # these headers: they are checked against PUBLIC_BASE_URL.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]
    logs.register(app, settings.log_format)  # its before_request runs first and starts the clock
    if settings.log_format is not None:  # production, or a server an operator asked to log
        logs.announce_telephony(settings.telephony_provider, settings.twilio_api_base_url, settings.twilio_account_sid)
    metrics.register(app, settings.prometheus_multiproc_dir)
    # Only this app's sessions: the domain's facts are counted when the use case commits.
    counters.count_after_commit(app.extensions["mfa"].sessions)
    health.register(app)
    if settings.bench_reference_endpoint:
        reference.register(app)
