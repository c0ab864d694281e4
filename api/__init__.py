"""The JSON API for relying applications (/api/v1), exactly as docs/api.md describes it."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import error_response, install_json_errors, mfa_error_response
from api.json_input import parse_object
from devices.views import PREFIX as DEVICE_PREFIX
from edge import db
from mfa import api_keys, authentications
from mfa.errors import MfaError, NotFound

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

# A revoked key keeps working for up to this long on a worker that had it cached (docs/api.md).
KEY_CACHE_SECONDS = 30


@bp.before_request
def _require_api_key():
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    caller = key_cache().authenticate(db(), key.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        return error_response("invalid_api_key", "A valid API key is required (Authorization: Bearer <key>).", 401)
    g.api_key_id, g.api_key_name = caller.id, caller.name
    count_request = current_app.extensions.get("mfa_count_api_request")
    if count_request is not None:  # the key's api_requests (web/rate_limits.py); 429 at the limit
        count_request()
    # Every /authentications/<auth_id>/... route, present and future, is checked here, before
    # its view runs: another key's sign-in (or a page's) is "not found" and nothing changes.
    auth_id = (request.view_args or {}).get("auth_id")
    if auth_id is not None:
        # Held for the request, so the view's use case reads it from the session, not again.
        g.authentication = authentications.owned_by(db(), auth_id, caller.id)
        if g.authentication is None:
            raise NotFound("No such authentication.", code="not_found")


def key_cache() -> api_keys.KeyCache:
    return current_app.extensions["mfa_api_keys"]


@bp.errorhandler(MfaError)
def _refusal(exc: MfaError):
    return mfa_error_response(exc)


def json_body() -> dict:
    """The body as a JSON object, or 400 bad_request (never a 500, whatever the bytes)."""
    raw = request.get_data(cache=True)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit and len(raw) >= limit:
        # A chunked body is cut at the limit without a word (werkzeug): refuse it, never parse a part.
        raise RequestEntityTooLarge()
    return parse_object(request.is_json, raw)


def register(app: Flask) -> None:
    from api import views  # noqa: F401  (routes attach to bp)

    app.extensions["mfa_api_keys"] = api_keys.KeyCache(app.extensions["mfa"].services.clock, KEY_CACHE_SECONDS)
    app.register_blueprint(bp)
    install_json_errors(app, (PREFIX, DEVICE_PREFIX))

    @app.after_request
    def _never_cached(response):
        # Sign-in states, codes and errors: no browser or proxy may keep any API answer.
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            response.headers["Cache-Control"] = "no-store"
        return response
