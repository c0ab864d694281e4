"""The verification call's webhooks (signed, under /twilio) and the recorded prompts (public).

A voice webhook always answers 200 with TwiML, even when something breaks:
the caller hears a polite goodbye, never Twilio's "application error".
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request, send_file

from edge import database_unavailable, db, is_database_outage, runtime, services
from ivr import twiml
from ivr.call_flow import CallUrls, steps_for
from ivr.webhook_urls import (PROMPTS_PREFIX, RECORDED_PROMPT, VOICE_ANSWER, VOICE_KEYS, VOICE_NO_INPUT,
                              VOICE_STATUS, WebhookUrls)
from ivr.webhooks import bp, until_known
from mfa import calls
from mfa.unit_of_work import use_case

log = logging.getLogger("mfa.webhooks")

prompts_bp = Blueprint("voice_prompts", __name__, url_prefix=PROMPTS_PREFIX)


def _challenge_id() -> str:
    return request.args.get("challenge", "")


def _turn() -> int | None:
    turn = request.args.get("turn", "")
    return int(turn) if turn.isdigit() and len(turn) < 4 else None


def _answer_with(turn_of) -> Response:
    voice = runtime().prompt_voice
    try:
        with use_case(db()):
            turn = turn_of()
        calls.end_calls(services(), turn.end_calls)  # after the commit: no lock held meanwhile
        urls = CallUrls(WebhookUrls(runtime().settings.public_base_url), _challenge_id(), turn.turn)
        xml = twiml.render(steps_for(turn, urls), turn.language, voice)
    except Exception as exc:
        if is_database_outage(exc):
            return database_unavailable(exc)  # goodbye TwiML, one log line a minute (edge.OutageLog)
        log.exception("voice webhook %s failed; saying goodbye", request.path)
        xml = twiml.goodbye("en-GB", voice)
    return Response(xml, 200, mimetype="text/xml")


@bp.post(VOICE_ANSWER)
def voice_answer():
    form = request.form
    return _answer_with(lambda: calls.answered(
        db(), services(), _challenge_id(), form.get("CallSid"), form.get("AnsweredBy")))


@bp.post(VOICE_KEYS)
def voice_keys():
    form = request.form
    return _answer_with(lambda: calls.keys_pressed(
        db(), services(), _challenge_id(), form.get("CallSid"), form.get("Digits"), _turn()))


@bp.post(VOICE_NO_INPUT)
def voice_no_input():
    return _answer_with(lambda: calls.heard_nothing(
        db(), services(), _challenge_id(), request.form.get("CallSid"), _turn()))


@bp.post(VOICE_STATUS)
def voice_status():
    form = request.form
    try:
        until_known(lambda: calls.status_changed(
            db(), services(), _challenge_id(), form.get("CallSid"), form.get("CallStatus")))
    except Exception as exc:  # Twilio does not retry status callbacks; log and acknowledge
        if is_database_outage(exc):
            return database_unavailable(exc)  # 503, as for texts: shows in Twilio's debugger
        log.exception("voice status callback failed")
    return "", 204


@prompts_bp.get(RECORDED_PROMPT)
def recorded_prompt(language: str, filename: str):
    path = runtime().prompt_voice.library.file_path(language, filename)
    if path is None:
        abort(404)
    response = send_file(path, mimetype="audio/wav", max_age=365 * 24 * 3600)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"  # URLs carry ?v=<hash>
    return response
