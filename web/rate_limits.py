"""Flask-Limiter at the HTTP edge: which of the catalogue's limits (mfa/limits.py) count which requests.

Each app has a Limiter of its own. Its counts live in Redis when REDIS_URL is set, so every instance
sharing that Redis (and RATE_LIMIT_KEY_PREFIX) shares them; otherwise in this process. If Redis stops
answering, flask-limiter counts in this process instead (one WARNING) and goes back to Redis once it
answers a ping: an outage of the counter never refuses a request nor turns one into a 500.

The limits are checked when the view is called: after the API key is checked (keys can name the
caller, g.api_key_id) and after the pages' CSRF check. Every number is the catalogue's, as the app's
settings set it, so `GET /api/v1/limits` publishes exactly what is enforced.

Twilio's webhooks carry no limit: every one is signature-checked before it changes anything (a
forger gets 403 at once), and Twilio retries what is refused, so a limit would only turn a busy
minute's real callbacks into repeats. Health, metrics, prompts and static files carry none either.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request
from flask_limiter import Limiter, RateLimitExceeded

from api.errors import error_response
from api.json_input import parse_object
from edge import client_ip, services
from mfa import limits
from mfa.limits import Limits
from mfa.lockout import source_key
from mfa.usernames import normalise_username
from web import errors as pages

log = logging.getLogger("mfa.web")

# A password that did not work: only these count against the sign-in limits (per key, per address, per
# person and address), so the many people behind one address or one relying application who sign in
# correctly never use up each other's allowance, and junk sign-ins cannot refuse a right password.
FAILED = (401, 423)


def _api_key() -> str:
    return str(g.get("api_key_id") or "")  # set by api._require_api_key before any view runs


def _address() -> str:
    # After TRUSTED_PROXIES (ops/__init__.py); an IPv6 address counts as its /64 (one household or phone
    # network hands out a whole /64, so rotating within it is one source), IPv4-mapped IPv6 as IPv4.
    return source_key(client_ip()) or "unknown"


def _typed_username() -> str:
    """The username the request names: the JSON body's (API) or the form's (pages); '' if none."""
    try:
        if request.path.startswith("/api/"):
            value = parse_object(request.is_json, request.get_data(cache=True)).get("username")
        else:
            value = request.form.get("username")
    except Exception:  # a malformed or oversized body: the view refuses it (400, 413) as usual
        return ""
    return normalise_username(value) if isinstance(value, str) else ""


def _person_and_address() -> str:
    # A keyed hash: the shared store (Redis) never holds a username or an address.
    return services().vault.keyed_hash(f"{_typed_username()}\n{_address()}")


def _failed(response: Response) -> bool:
    return response.status_code in FAILED


@dataclass(frozen=True)
class Counted:
    """One catalogue limit on one route: per what (key), and which bucket (routes with one scope share it)."""

    name: str
    key: Callable[[], str]
    scope: str
    methods: tuple[str, ...] | None = None
    failures_only: bool = False


SIGN_IN_PAGE = "web.sign_in"
API_SIGN_IN = "api.create_authentication"
API_APP_PASSWORD = "api.verify_app_password"
ENTRA_LINK = "entra.link"  # the password that links an Entra user (web/entra.py): only when EAM_ISSUER is set
ONLY_SOMETIMES = (ENTRA_LINK,)
# Sign-ins (API and page alike) count failures only. App-password checks count only per key: a flood
# of wrong app passwords (a mail gateway's address) must not refuse the person's right one, and an app
# password is a 75-bit random secret, so the per-key limit alone bounds guessing (docs/limits.md).
PAGE_PASSWORD = (Counted(limits.PAGE_SIGN_INS, _address, "page_sign_ins", methods=("POST",), failures_only=True),
                 Counted(limits.SIGN_INS_PER_PERSON_AND_ADDRESS, _person_and_address, "person_sign_ins",
                         methods=("POST",), failures_only=True))
SPECIFIC: dict[str, tuple[Counted, ...]] = {
    API_SIGN_IN: (Counted(limits.API_SIGN_INS, _api_key, "api_sign_ins", failures_only=True),
                  Counted(limits.SIGN_INS_PER_PERSON_AND_ADDRESS, _person_and_address, "person_sign_ins",
                          failures_only=True)),
    API_APP_PASSWORD: (Counted(limits.API_APP_PASSWORD_CHECKS, _api_key, "api_app_password_checks"),),
    SIGN_IN_PAGE: PAGE_PASSWORD,
    ENTRA_LINK: PAGE_PASSWORD,  # a password typed on a page: the same limits, counted together
}


def counted(endpoint: str, path: str, methods: set[str]) -> list[Counted]:
    """Every limit that counts a request to this route when its view is called (for the API's
    `api_requests`, counted before anything else is looked up, see count_api_request)."""
    out = list(SPECIFIC.get(endpoint, ()))
    if endpoint.startswith("devices."):
        out.append(Counted(limits.DEVICE_REQUESTS, _address, "device_requests"))
    elif "POST" in methods and pages.for_a_browser(path):
        out.append(Counted(limits.PAGE_FORMS, _address, "page_forms", methods=("POST",)))
    return out


def register(app: Flask) -> Limiter:
    """Give the app its Limiter, count every route the catalogue names, and answer 429 in its own words."""
    settings = app.extensions["mfa"].settings
    numbers: Limits = app.extensions["mfa"].services.limits
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.redis_url or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", settings.rate_limit_key_prefix)
    # Redis gone: count in this process instead of failing sign-in (flask-limiter logs one
    # WARNING when it switches, and goes back to Redis once a ping answers again).
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)  # anything else the store does: logged, not a 500
    if settings.redis_url:  # a hung Redis costs a request one second, not a worker
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1})
    limiter = Limiter(_address, strategy="fixed-window")
    limiter.init_app(app)
    app.extensions["mfa_limiter"] = limiter

    methods: dict[str, set[str]] = {}
    paths: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(rule.methods or ())
        paths.setdefault(rule.endpoint, rule.rule)
    missing = [endpoint for endpoint in SPECIFIC
               if endpoint not in app.view_functions and endpoint not in ONLY_SOMETIMES]
    if missing:  # a renamed view would silently lose its limits
        raise RuntimeError(f"rate limits name routes that do not exist: {', '.join(missing)}")
    # Every /api/v1 request with a valid key, counted by api._require_api_key as soon as the key is
    # known (before an authentication is looked up: a 404 for another key's sign-in counts too).
    api_requests = limiter.shared_limit(numbers.flask_limit(limits.API_REQUESTS), scope="api_requests",
                                        key_func=_api_key, error_message=limits.API_REQUESTS)

    def count_api_request() -> None:
        with api_requests:  # raises RateLimitExceeded at the limit
            pass

    app.extensions["mfa_count_api_request"] = count_api_request
    # Each limited route and the methods counted on it (None: every method).
    limited: dict[str, set[str] | None] = {endpoint: None for endpoint in app.view_functions
                                           if endpoint.startswith("api.")}
    for endpoint, original in list(app.view_functions.items()):
        view: Callable[..., Any] = original
        counts = counted(endpoint, paths.get(endpoint, ""), methods.get(endpoint, set()))
        for count in counts:
            view = limiter.shared_limit(
                numbers.flask_limit(count.name), scope=count.scope, key_func=count.key,
                methods=list(count.methods) if count.methods else None, error_message=count.name,
                deduct_when=_failed if count.failures_only else None,
            )(view)
        if counts and endpoint not in limited:
            every = any(count.methods is None for count in counts)
            limited[endpoint] = None if every else {method for count in counts for method in count.methods or ()}
        app.view_functions[endpoint] = view

    @limiter.request_filter
    def _carries_no_limit() -> bool:  # skip the per-request look-up for webhooks, static files, health
        if request.endpoint not in limited:
            return True
        counted_methods = limited[request.endpoint]
        return counted_methods is not None and request.method not in counted_methods

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded):
        name = str(exc.description)
        wait = _retry_after(limiter, numbers, name)
        if pages.for_a_browser(request.path):
            response = pages.error_page(pages.PAGES[429], 429)
            response.headers["Retry-After"] = str(wait)
            return response
        return error_response("rate_limited", refusal(numbers, name, wait), 429, retry_after=wait, limit=name)

    return limiter


def refusal(numbers: Limits, name: str, wait: int) -> str:
    limit = limits.BY_NAME.get(name)
    if limit is None:
        return f"Too many requests. Try again in {wait} seconds."
    return (f"Too many requests: {name} allows {numbers.number(name)} in {numbers.window_seconds(name)} seconds "
            f"({limit.counts}). Try again in {wait} seconds.")


def _retry_after(limiter: Limiter, numbers: Limits, name: str) -> int:
    """Whole seconds until the breached limit's window ends (its full window if the store cannot say)."""
    try:
        breached = limiter.current_limit
        if breached is not None:
            return max(1, math.ceil(breached.window[0] - time.time()))  # when the window ends
    except Exception:
        log.warning("the rate-limit store could not say when %s resets", name, exc_info=True)
    return numbers.window_seconds(name) if name in limits.BY_NAME else 60
