"""Pages for people: the dev phone (/phone) and the SMS inbox (/inbox).

Each page is rendered by one Jinja partial; standin.js polls a small JSON endpoint for the
network's version and swaps in a freshly rendered partial when it changes, so the HTML is
drawn in one place only. Forms work without JavaScript too (post, then redirect back).
"""

from __future__ import annotations

import re
from itertools import groupby

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template
from flask import request, url_for
from flask.typing import ResponseReturnValue

from .network import Network
from .records import SimCall

bp = Blueprint("standin_pages", __name__)

RECENT_CALLS = 5
ASKS_FOR_NUMBER = re.compile(r"\btwo[- ]digit number\b", re.IGNORECASE)


def network() -> Network:
    return current_app.extensions["standin"]


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@bp.get("/")
def index() -> str:
    return render_template("index.html")


# ---- the dev phone ----

def asks_for_number(call: SimCall) -> bool:
    """The listening <Gather> wants two digits, or its prompt asks for "the two-digit number"
    (a number-matched call: the number is on the sign-in screen, never on the phone)."""
    listening = call.current_gather()
    if listening is None:
        return False
    attributes, said = listening
    return attributes.get("numDigits") == "2" or any(ASKS_FOR_NUMBER.search(text) for text in said)


def phone_context() -> dict:
    calls = network().calls()
    live = sorted((c for c in calls if not c.ended), key=lambda c: (c.to, c.created_at))
    return {
        "version": network().version,
        "numbers": [(number, list(group)) for number, group in groupby(live, lambda c: c.to)],
        "recent": [c for c in reversed(calls) if c.ended][:RECENT_CALLS],
        "asks_for_number": asks_for_number,
    }


@bp.get("/phone")
def phone() -> str:
    return render_template("phone.html", **phone_context())


@bp.get("/phone/panel")
def phone_panel() -> str:
    return render_template("_phone_panel.html", **phone_context())


@bp.get("/phone/calls.json")
def phone_state() -> Response:
    return jsonify(version=network().version, calls=[
        {"sid": c.sid, "to": c.to, "from": c.from_, "status": c.status,
         "events": len(c.transcript)} for c in network().calls() if not c.ended])


@bp.post("/phone/<call_sid>/<action>")
def phone_action(call_sid: str, action: str) -> ResponseReturnValue:
    net = network()
    actions = {"answer": net.answer, "decline": net.decline, "hangup": net.hang_up,
               "press": lambda sid: net.press(sid, request.form.get("keys", ""))}
    if action not in actions:
        abort(404)
    try:
        call = actions[action](call_sid)
    except KeyError:
        abort(404)
    except ValueError as exc:
        abort(400, str(exc))
    if wants_json():
        return jsonify(sid=call.sid, status=call.status)
    return redirect(url_for(".phone"), code=303)


# ---- the SMS inbox ----

def inbox_context() -> dict:
    newest_first = list(reversed(network().messages()))
    numbers: dict[str, list] = {}
    for message in newest_first:  # dicts keep insertion order: newest number first
        numbers.setdefault(message.to, []).append(message)
    return {"version": network().version, "numbers": list(numbers.items())}


@bp.get("/inbox")
def inbox() -> str:
    return render_template("inbox.html", **inbox_context())


@bp.get("/inbox/panel")
def inbox_panel() -> str:
    return render_template("_inbox_panel.html", **inbox_context())


@bp.get("/inbox/messages.json")
def inbox_state() -> Response:
    return jsonify(version=network().version, messages=[
        {"sid": m.sid, "to": m.to, "from": m.from_, "body": m.body, "status": m.status}
        for m in reversed(network().messages())])
