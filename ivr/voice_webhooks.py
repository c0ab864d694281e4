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
from ivr.webhook_urls import (PROMPTS_PREFIX, RECORDED_PROMPT, RECORDED_PROMPT_UNVERSIONED, VOICE_AMD, VOICE_ANSWER,
                              VOICE_KEYS, VOICE_NO_INPUT, VOICE_STATUS, WebhookUrls)
from ivr.webhooks import bp, until_known
from mfa import calls
from mfa.call_keys import MENU
from mfa.unit_of_work import use_case

log = logging.getLogger("mfa.webhooks")

prompts_bp = Blueprint("voice_prompts", __name__, url_prefix=PROMPTS_PREFIX)


def _challenge_id() -> str:
    return request.args.get("challenge", "")


def _turn() -> int | None:
    turn = request.args.get("turn", "")
    return int(turn) if turn.isdigit() and len(turn) < 4 else None


def _question() -> dict:
    """Which question the keys answer, and the repeats heard so far (a signed URL's own query)."""
    repeats = request.args.get("repeats", "")
    return {"turn": _turn(), "ask": request.args.get("ask", MENU),
            "repeats": int(repeats) if repeats.isdigit() and len(repeats) < 3 else 0}


def _answer_with(turn_of) -> Response:
    voice = runtime().prompt_voice
    try:
        with use_case(db()):
            turn = turn_of()
        calls.end_calls(services(), turn.end_calls)  # after the commit: no lock held meanwhile
        urls = CallUrls(WebhookUrls(runtime().settings.public_base_url), _challenge_id(), turn.turn, turn.ask,
                        turn.repeats)
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
        db(), services(), _challenge_id(), form.get("CallSid"), form.get("Digits"), **_question()))


@bp.post(VOICE_NO_INPUT)
def voice_no_input():
    return _answer_with(lambda: calls.heard_nothing(
        db(), services(), _challenge_id(), request.form.get("CallSid"), **_question()))


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


@bp.post(VOICE_AMD)
def voice_amd():
    """Answering-machine detection's verdict (AsyncAmdStatusCallback); Twilio reads no TwiML here."""
    form = request.form
    try:
        with use_case(db()):
            to_end = calls.machine_detected(db(), services(), _challenge_id(), form.get("CallSid"),
                                            form.get("AnsweredBy"))
        calls.end_calls(services(), to_end)  # after the commit: voicemail or a fax is hung up on
    except Exception as exc:
        if is_database_outage(exc):
            return database_unavailable(exc)  # 503, as for status callbacks
        log.exception("machine detection callback failed")
    return "", 204


@prompts_bp.get(RECORDED_PROMPT)
def recorded_prompt(language: str, version: str, filename: str):
    """A recording at its content hash, or its words beside it (<name>.txt: what the dev phone
    shows). What is served here never changes, so it is cached for a year."""
    library = runtime().prompt_voice.library
    words = library.words(language, version, filename)
    audio = library.versioned_audio(language, version, filename) if words is None else words.encode()
    if audio is None:
        abort(404)  # another hash: a rebuilt or re-imported file lives at a new path
    response = Response(audio, 200, mimetype="audio/wav" if words is None else "text/plain")
    if words is not None:
        response.headers["Content-Language"] = language
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.set_etag(version)
    return response.make_conditional(request)


@prompts_bp.get(RECORDED_PROMPT_UNVERSIONED)
def recorded_prompt_unversioned(language: str, filename: str):
    """The path earlier releases handed out (with ?v=<hash>), kept for calls in flight during an
    upgrade. Its file can change, so caches must check again (ETag, Last-Modified) each time."""
    path = runtime().prompt_voice.library.file_path(language, filename)
    if path is None:
        abort(404)
    response = send_file(path, mimetype="audio/wav")
    response.headers["Cache-Control"] = "no-cache"
    return response
