"""The JSON API for relying applications (/api/v1), exactly as ../shared/CONTRACT.md §3."""
from __future__ import annotations

import time

from flask import Blueprint, Flask, g, request

from api.errors import error_response, install_json_errors, mfa_error_response
from edge import db
from mfa import api_keys
from mfa.errors import BadRequest, MfaError
from mfa.vault import token_hash

bp = Blueprint("api", __name__, url_prefix="/api/v1")


# Valid keys seen in the last half minute, by hash: saves a query on every API call.
# A key removed from the database stops working within KEY_CACHE_SECONDS.
KEY_CACHE_SECONDS = 30
_known_keys: dict[str, tuple[str, float]] = {}


@bp.before_request
def _require_api_key():
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    name = _api_key_name(key.strip()) if scheme.lower() == "bearer" else None
    if name is None:
        return error_response("invalid_api_key", "A valid API key is required (Authorization: Bearer <key>).", 401)
    g.api_key_name = name


def _api_key_name(key: str) -> str | None:
    digest = token_hash(key)
    cached = _known_keys.get(digest)
    if cached and time.monotonic() - cached[1] < KEY_CACHE_SECONDS:
        return cached[0]
    found = api_keys.authenticate(db(), key)
    if found is None:
        _known_keys.pop(digest, None)
        return None
    if len(_known_keys) > 1000:  # a handful of relying applications in practice
        _known_keys.clear()
    _known_keys[digest] = (found.name, time.monotonic())
    return found.name


@bp.errorhandler(MfaError)
def _refusal(exc: MfaError):
    return mfa_error_response(exc)


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object (Content-Type: application/json).")
    return body


def register(app: Flask) -> None:
    from api import views  # noqa: F401  (routes attach to bp)

    app.register_blueprint(bp)
    install_json_errors(app, bp.url_prefix)
