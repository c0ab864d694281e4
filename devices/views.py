"""The phone app's API (/device/v1): each view reads the signed request, runs one use case, answers JSON.

The signing format is docs/push.md, "Device protocol". No cookies and no CSRF token: every
request but /config is signed with the device's own key.
"""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify, request

from api.errors import mfa_error_response
from api.json_input import parse_object
from api.serialize import iso
from edge import client_ip, db, services
from mfa import device_requests, push_enrolment
from mfa.calls import end_calls
from mfa.device_signatures import SignedRequest
from mfa.errors import MfaError
from mfa.unit_of_work import use_case

PREFIX = "/device/v1"
bp = Blueprint("devices", __name__, url_prefix=PREFIX)


@bp.errorhandler(MfaError)
def _refusal(exc: MfaError):
    return mfa_error_response(exc)


@bp.after_request
def _never_cached(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed(device_id: str | None = None) -> SignedRequest:
    headers = request.headers
    query = request.query_string.decode("latin-1")
    return SignedRequest(
        method=request.method, path=request.path + (f"?{query}" if query else ""), body=request.get_data(cache=True),
        device_id=headers.get("X-Device-Id", "") if device_id is None else device_id,
        timestamp=headers.get("X-Device-Timestamp", ""), nonce=headers.get("X-Device-Nonce", ""),
        signature=headers.get("X-Device-Signature", ""),
    )


def _body() -> dict:
    return parse_object(request.is_json, request.get_data(cache=True))


@bp.get("/config")
def config():
    return jsonify({"service": services().service_name, "vapid_public_key": services().push.public_key})


@bp.post("/enrol")
def enrol():
    body = _body()
    with use_case(db()):
        device = push_enrolment.enrol_device(db(), services(), _signed(device_id=""), body, client_ip())
        answer = {"device_id": device.id, "service": services().service_name, "username": device.method.user.username}
    return jsonify(answer), 201


@bp.get("/requests")
def pending():
    with use_case(db()):
        found = device_requests.pending(db(), services(), _signed())
    return jsonify({"requests": [
        {"id": r.id, "service": r.service, "app": r.app, "created_at": iso(r.created_at),
         "expires_at": iso(r.expires_at), "source_ip": r.source_ip, "cancelled": r.cancelled} for r in found]})


@bp.post("/requests/<request_id>/approve")
def approve(request_id: str):
    body = _body()
    with use_case(db()):
        device_requests.approve(db(), services(), _signed(), request_id, body, client_ip())
    return jsonify({"status": "approved"})


@bp.post("/requests/<request_id>/deny")
def deny(request_id: str):
    body = _body()
    with use_case(db()):
        status, calls = device_requests.deny(db(), services(), _signed(), request_id, body, client_ip())
    end_calls(services(), calls)  # after the commit: a fraud report hangs up the person's other calls
    return jsonify({"status": str(status)})


@bp.put("/subscription")
def subscription():
    body = _body()
    with use_case(db()):
        device_requests.update_subscription(db(), services(), _signed(), body)
    return jsonify({"ok": True})


def register(app: Flask) -> None:
    app.register_blueprint(bp)
