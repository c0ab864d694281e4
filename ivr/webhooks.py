"""Twilio's webhooks. Every request must carry a valid X-Twilio-Signature.

The signed URL is rebuilt from PUBLIC_BASE_URL, not from what Flask sees:
behind a proxy the Host and scheme here are not what Twilio signed.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Flask, request
from twilio.request_validator import RequestValidator

from edge import db, runtime, services
from ivr.webhook_urls import PREFIX, SMS_STATUS
from mfa import sms
from mfa.unit_of_work import use_case
from ops import counters

log = logging.getLogger("mfa.webhooks")

bp = Blueprint("twilio", __name__, url_prefix=PREFIX)


def signed_url() -> str:
    query = request.query_string.decode()
    return runtime().settings.public_base_url + request.path + (f"?{query}" if query else "")


@bp.before_request
def _require_twilio_signature():
    validator = RequestValidator(runtime().settings.twilio_auth_token)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not validator.validate(signed_url(), request.form, signature):
        log.warning("rejected unsigned or forged webhook %s", request.path)
        counters.count_webhook_signature_failure()
        return "Invalid signature", 403
    # Twilio names the account on every webhook. A valid signature for another account means a
    # shared or leaked token (or a stand-in of another instance): none of its calls are ours.
    if request.form.get("AccountSid") != runtime().settings.twilio_account_sid:
        log.warning("rejected a signed webhook for another Twilio account %s", request.path)
        counters.count_webhook_signature_failure()
        return "Wrong account", 403


@bp.post(SMS_STATUS)
def sms_status():
    form = request.form
    message_sid = form.get("MessageSid", "")
    if not message_sid.startswith(("SM", "MM")):  # Twilio's message Sids; a CallSid is no text
        log.info("text status callback without a message Sid ignored")
        return "", 204
    until_known(lambda: sms.record_delivery(db(), services(), message_sid,
                                            form.get("MessageStatus", ""), form.get("ErrorCode")))
    return "", 204


def until_known(use, attempts: int = 10, pause: float = 0.2) -> None:
    """Run a status-callback use case; while it reports the call or text unknown, wait and retry.

    Twilio can report a fast failure before the request that placed the call or sent the
    text has committed its row. Twilio does not retry status callbacks, so waiting a moment
    here (2 s at most, well inside Twilio's 15 s) is what keeps such a report from being lost.
    """
    for attempt in range(attempts):
        with use_case(db()):
            if use():
                return
        if attempt < attempts - 1:
            runtime().sleep(pause)  # time.sleep, or what the app was given as SLEEP (tests)
    log.info("status callback for an unknown call or text %s ignored", request.path)


def register(app: Flask) -> None:
    from ivr import voice_webhooks  # voice routes attach to bp

    app.register_blueprint(bp)
    app.register_blueprint(voice_webhooks.prompts_bp)
