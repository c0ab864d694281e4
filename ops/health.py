"""GET /healthz (the process answers) and GET /readyz (it can do its work).

/readyz checks the database and, when REDIS_URL is set, Redis; 503 names what failed.
A load balancer should route on /readyz and a supervisor restart on /healthz, so a
database outage takes instances out of rotation without restarting them all.
Redis only shares rate-limit counters, and without it each process counts for itself:
its loss is reported as "degraded" with a 200, so it never takes every instance out at once.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Flask, jsonify
from sqlalchemy import text

from edge import OutageLog, runtime

if TYPE_CHECKING:
    import redis

log = logging.getLogger("mfa.ops")

REDIS_TIMEOUT_SECONDS = 1.0


def check_database(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


class RedisCheck:
    """One client per app, made on first use, so its connection pool is reused."""

    def __init__(self, url: str):
        self.url = url
        self._client: redis.Redis | None = None

    def __call__(self) -> None:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        self._client.ping()


def register(app: Flask) -> None:
    settings = app.extensions["mfa"].settings
    redis_check = RedisCheck(settings.redis_url) if settings.redis_url else None
    redis_outage_log = OutageLog("redis", verb="limits counted in-process")

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        checks = {"database": lambda: check_database(runtime().engine)}
        if redis_check is not None:
            checks["redis"] = redis_check
        results, failed = {}, []
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; say which, not the secrets in a URL
                # A balancer asks every few seconds: one line a minute per outage, as for requests.
                (runtime().outage_log if name == "database" else redis_outage_log).report(exc)
                results[name] = f"unavailable: {type(exc).__name__}"
                failed.append(name)
        if "database" in failed:
            return jsonify({"status": "unavailable", "failed": failed, "checks": results}), 503
        if failed:
            return jsonify({"status": "degraded", "failed": failed, "checks": results})
        return jsonify({"status": "ready", "checks": results})
