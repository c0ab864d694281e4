"""GET /healthz (the process answers) and GET /readyz (it can do its work).

/readyz checks the database and, when REDIS_URL is set, Redis; 503 names what failed.
A load balancer should route on /readyz and a supervisor restart on /healthz, so a
database outage takes instances out of rotation without restarting them all.
Redis only shares rate-limit counters, and without it each process counts for itself:
its loss is reported as "degraded" with a 200, so it never takes every instance out at once.
It also decrypts a sample of the stored secrets (mfa/data_key_check.py, at most once a minute):
with a key missing from DATA_KEY every code check and call would fail, so it answers 503 "data_key".
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Flask, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from edge import OutageLog, runtime
from mfa import data_key_check
from version import __version__

if TYPE_CHECKING:
    from datetime import datetime

    import redis

log = logging.getLogger("mfa.ops")

REDIS_TIMEOUT_SECONDS = 1.0
DATA_KEY_CHECK_SECONDS = 60


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


class RecentKeyCheck:
    """The sample decrypt at most once a minute (by the app's clock): a balancer probing every
    2 s does not read the encrypted columns each time. A database error is not kept: it is raised."""

    def __init__(self, seconds: float = DATA_KEY_CHECK_SECONDS):
        self.seconds = seconds
        self._result: data_key_check.KeyCheck | None = None
        self._at: datetime | None = None

    def problem(self) -> str | None:
        rt = runtime()
        now = rt.services.clock.now()
        if self._result is None or self._at is None or not 0 <= (now - self._at).total_seconds() < self.seconds:
            with rt.sessions() as db:
                result = data_key_check.sample(db, rt.services.vault)
            if result.problem() is not None:
                log.error("%s", result.problem())  # once a minute while it lasts, like an outage
            self._result, self._at = result, now
        return self._result.problem()


def register(app: Flask) -> None:
    settings = app.extensions["mfa"].settings
    redis_check = RedisCheck(settings.redis_url) if settings.redis_url else None
    redis_outage_log = OutageLog("redis", verb="limits counted in-process")
    data_key = RecentKeyCheck()

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok", "version": __version__})

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
        if "database" not in failed:
            try:
                problem = data_key.problem()
            except SQLAlchemyError as exc:  # down since the ping, or no schema yet: the database's failure
                runtime().outage_log.report(exc)
                results["database"] = f"unavailable: {type(exc).__name__}"
                failed.insert(0, "database")
            else:  # the operator's line is in the log; the probe's answer names no secrets
                results["data_key"] = "ok" if problem is None else "unavailable: stored secrets do not decrypt"
                if problem is not None:
                    failed.append("data_key")
        if "database" in failed or "data_key" in failed:
            return jsonify({"status": "unavailable", "failed": failed, "checks": results}), 503
        if failed:
            return jsonify({"status": "degraded", "failed": failed, "checks": results})
        return jsonify({"status": "ready", "checks": results})
