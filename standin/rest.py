"""Twilio's REST API (2010-04-01) for calls and messages, answered from the simulated network.

Handlers only change state and queue work; they never call back into the customer app, which
is still waiting for our answer and has not stored the new Sid yet.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import validation
from .errors import FORCED_FAILURE_CODES, MESSAGES, TwilioApiError, error_body
from .network import Network
from .resources import call_resource, message_resource

API_PREFIX = "/2010-04-01"
DROP_CONNECTION = "standin.drop_connection"  # WSGI environ flag: close the socket, answer nothing

bp = Blueprint("standin_rest", __name__, url_prefix=f"{API_PREFIX}/Accounts/<account_sid>")


def network() -> Network:
    return current_app.extensions["standin"]


def twilio_error(code: int, message: str, status: int) -> Response:
    response = jsonify(error_body(code, message, status))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def not_found() -> Response:
    return twilio_error(20404, MESSAGES[20404].format(detail=request.path), 404)


@bp.before_request
def gatekeeper() -> Response | None:
    net = network()
    fault = net.take_fault()
    if fault and fault[0] == "refuse":
        return forced_error(fault[1])
    g.standin_fault = fault  # applied to the answer once the request has been carried out
    auth = request.authorization
    if not (auth and auth.type == "basic"
            and hmac.compare_digest(auth.username or "", net.account_sid)
            and hmac.compare_digest(auth.password or "", net.auth_token)):
        return twilio_error(20003, MESSAGES[20003], 401)
    if (request.view_args or {}).get("account_sid") != net.account_sid:
        return not_found()
    return None


def forced_error(status: int) -> Response:
    code = FORCED_FAILURE_CODES.get(status, status)
    return twilio_error(code, MESSAGES.get(code, f"Simulated HTTP {status}"), status)


@bp.after_request
def spoil_answer(response: Response) -> Response:
    """Fault modes that act after the work is done (Network.fail_after_next_requests etc.)."""
    fault = g.pop("standin_fault", None)
    if fault is None:
        return response
    mode, status = fault
    if mode == "fail-after":
        return forced_error(status)
    if mode == "garble":
        return Response("<html><body><h1>Bad gateway</h1></body></html>", status, mimetype="text/html")
    request.environ[DROP_CONNECTION] = True  # "drop": see app.drop_connections
    return response


@bp.errorhandler(TwilioApiError)
def refused(error: TwilioApiError) -> Response:
    return twilio_error(error.code, error.message, error.status)


def created(body: dict) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response


@bp.post("/Calls.json")
def create_call(account_sid: str) -> Response:
    params = validation.parse_form(request.form, validation.CREATE_CALL)
    validation.check_create_call(params)
    if params.get("Url"):
        params.pop("Twiml", None)  # Twilio: with both, Twiml is ignored
    code = network().refusal("call", params["To"], params["From"])
    if code:
        raise TwilioApiError(code, to=params["To"], from_=params["From"])
    return created(call_resource(network().place_call(params)))


@bp.get("/Calls/<call_sid>.json")
def fetch_call(account_sid: str, call_sid: str) -> Response:
    try:
        return jsonify(call_resource(network().call(call_sid)))
    except KeyError:
        return not_found()


@bp.post("/Calls/<call_sid>.json")
def update_call(account_sid: str, call_sid: str) -> Response:
    params = validation.parse_form(request.form, validation.UPDATE_CALL)
    validation.check_update_call(params)
    try:
        return jsonify(call_resource(network().update_call(call_sid, params)))
    except KeyError:
        return not_found()


@bp.post("/Messages.json")
def create_message(account_sid: str) -> Response:
    params = validation.parse_form(request.form, validation.CREATE_MESSAGE)
    validation.check_create_message(params)
    code = network().refusal("sms", params["To"], params.get("From"))
    if code:
        raise TwilioApiError(code, to=params["To"], from_=params.get("From") or "")
    return created(message_resource(network().send_message(params)))


@bp.get("/Messages/<message_sid>.json")
def fetch_message(account_sid: str, message_sid: str) -> Response:
    try:
        return jsonify(message_resource(network().message(message_sid)))
    except KeyError:
        return not_found()


def api_fallbacks(app) -> None:
    """Unknown paths and methods under the API answer in Twilio's error shape, not HTML."""

    @app.errorhandler(404)
    def missing(error):
        if request.path.startswith(API_PREFIX):
            return not_found()
        return error

    @app.errorhandler(405)
    def wrong_method(error):
        if request.path.startswith(API_PREFIX):
            return twilio_error(20004, "Method not allowed", 405)
        return error
