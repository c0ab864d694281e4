"""GET /metrics (Prometheus text format) and the webhook latency histograms.

Webhook latency is measured from the first before_request hook (ops registers it, so it
runs before the signature check) to after_request, labelled by route, never by query.
The sign-in, challenge, audit and Twilio counters live in ops/counters.py. The telephony budget's
gauge is counted from the database when scraped (budget_gauge).

With several gunicorn workers, set PROMETHEUS_MULTIPROC_DIR to an empty directory before
start-up (ops/gunicorn_config.py empties it): each worker then writes its values to files
there, and /metrics, whichever worker answers, adds up all of them.
"""
from __future__ import annotations

import time

import logging

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from edge import db, services
from ivr import webhook_urls
from mfa import spend, unheard

log = logging.getLogger("mfa.ops")

WEBHOOK_PREFIX = webhook_urls.PREFIX + "/"
WEBHOOK_SECONDS = Histogram(
    "mfa_webhook_duration_seconds", "Time to answer a Twilio webhook, by route.", ["path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
WEBHOOK_RESPONSES = Counter(
    "mfa_webhook_responses", "Twilio webhook answers by route and HTTP status (403: bad signature).",
    ["path", "status"],
)


def register(app: Flask, multiproc_dir: str | None) -> None:
    for rule in app.url_map.iter_rules():  # every webhook's latency series from the first scrape, at 0
        if rule.rule.startswith(WEBHOOK_PREFIX):
            WEBHOOK_SECONDS.labels(rule.rule)

    @app.after_request
    def _time_webhook(response):
        if request.path.startswith(WEBHOOK_PREFIX):
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            started = g.get("ops_started")  # set by ops.logs' before_request, the first to run
            if started is not None:
                WEBHOOK_SECONDS.labels(route).observe(time.perf_counter() - started)
            WEBHOOK_RESPONSES.labels(route, str(response.status_code)).inc()
        return response

    @app.get("/metrics")
    def metrics():
        if multiproc_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
        else:
            registry = REGISTRY
        return Response(generate_latest(registry) + budget_gauge(), mimetype=CONTENT_TYPE_LATEST)


class _Value:
    """A collector of one value read at scrape time."""

    def __init__(self, family: GaugeMetricFamily):
        self.family = family

    def collect(self):
        yield self.family


def budget_gauge() -> bytes:
    """mfa_telephony_budget_remaining, counted from the database at each scrape: the same value from
    every worker and every instance (the budget is the whole service's), there before the first
    send, and current after every send and refusal. Left out, with a warning, if the database fails;
    mfa_database_up says which (1: it answered this scrape; 0: it did not, and /readyz answers 503)."""
    registry = CollectorRegistry()
    try:
        remaining = spend.budget_remaining(db(), services())
        awaiting = unheard.awaiting_report(db(), services().clock.now())
    except SQLAlchemyError:
        log.warning("mfa_telephony_budget_remaining left out: the database did not answer", exc_info=True)
        remaining = None
    registry.register(_Value(GaugeMetricFamily(
        "mfa_database_up", "1 when the database answered this scrape, 0 when not (this instance is not ready).",
        value=0 if remaining is None else 1)))
    if remaining is not None:
        registry.register(_Value(GaugeMetricFamily(
            "mfa_telephony_budget_remaining",
            "Calls and texts the service may still place today (UTC): TELEPHONY_DAILY_BUDGET less those sent.",
            value=remaining)))
        waiting = GaugeMetricFamily(
            "mfa_challenges_awaiting_twilio",
            "Calls and texts placed 30 s to 1 h ago, still pending, that Twilio has not reported on at all "
            "(its webhooks cannot reach PUBLIC_BASE_URL?), by method. Counted from the database.",
            labels=["method"])
        for method, count in sorted(awaiting.items()):
            waiting.add_metric([method], count)
        registry.register(_Value(waiting))
    return generate_latest(registry)
