"""The JSON error shape; the status for each domain refusal comes from edge_errors.py."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from edge import database_unavailable, is_database_outage
from edge_errors import status_for
from mfa import errors

log = logging.getLogger("mfa.api")


def error_response(code: str, message: str, status: int, **extra):
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    if "retry_after" in extra:
        response.headers["Retry-After"] = str(extra["retry_after"])
    return response


def mfa_error_response(exc: errors.MfaError):
    return error_response(exc.code, exc.message, status_for(exc), **exc.extra)


def install_json_errors(app: Flask, prefix: tuple[str, ...]) -> None:
    """Under the prefixes, HTTP errors and crashes answer in the JSON error shape too."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # The database failing outside a view (opening or saving a session) arrives wrapped in a 500.
        original = getattr(exc, "original_exception", None)
        if is_database_outage(original):
            return database_unavailable(original)
        if not request.path.startswith(prefix):
            return exc
        code = {413: "too_large", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.code or 500, "bad_request" if (exc.code or 500) < 500 else "server_error"
        )
        response = error_response(code, exc.description or exc.name, exc.code or 500)
        if "Allow" in (headers := dict(exc.get_headers())):  # a 405 says what is allowed (RFC 9110)
            response.headers["Allow"] = headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith(prefix):
            return error_response("server_error", "Something went wrong on our side.", 500)
        return "Something went wrong on our side.", 500
