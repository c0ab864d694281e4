"""The JSON API for relying applications (/api/v1), exactly as ../shared/CONTRACT.md §3."""
from __future__ import annotations

from flask import Blueprint, Flask, g, request

from api.errors import error_response, install_json_errors, mfa_error_response
from edge import db
from mfa import api_keys
from mfa.errors import BadRequest, MfaError

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _require_api_key():
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    found = api_keys.authenticate(db(), key.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        return error_response("invalid_api_key", "A valid API key is required (Authorization: Bearer <key>).", 401)
    g.api_key_name = found.name


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
