"""The 10 minutes after signing in when security info and app passwords can be changed (WCAG 2.2.1).

The window is essential (a change asks for a recent sign-in) so it is never extended; instead the
pages say how long is left, app.js warns WARN_BEFORE the end with a link to confirm it's you again,
and a change refused after the end is kept (web/guards.py) and shown filled in once the same
person has signed in again. It is never applied by itself: they check it and select the button.
"""
from __future__ import annotations

import math
from datetime import datetime

from flask import g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from edge import services
from mfa.time_limits import WARN_BEFORE
from web import bp, session_store
from web.flow import RECENT_SIGN_IN, safe_next, signed_in_recently, signed_in_user, signed_in_user_id
from web.guards import KEPT_FORM, kept_in_time


def in_words(seconds: int) -> str:
    """As app.js says it: whole minutes rounded up, or "less than a minute"."""
    if seconds < 60:
        return "less than a minute"
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


@bp.app_template_global()
def change_window() -> dict | None:
    """For a change page: what the countdown needs, or None when a change would ask to sign in again."""
    when: datetime | None = getattr(session, "signed_in_at", None)
    if when is None or not signed_in_recently():
        return None
    seconds = int((when + RECENT_SIGN_IN - services().clock.now()).total_seconds())  # down: never promise more
    return {"seconds_left": seconds, "warn_before": int(WARN_BEFORE.total_seconds()),
            "minutes": int(RECENT_SIGN_IN.total_seconds() // 60), "left": in_words(seconds)}


@bp.app_template_global()
def kept_form(path: str) -> dict | None:
    """The change refused on `path` for want of a recent sign-in, once this person has signed in
    again: {"action": its endpoint, "fields": {name: value}}, given once (then gone)."""
    kept = session.get(KEPT_FORM)
    if not isinstance(kept, dict) or kept.get("path") != path or not signed_in_recently():
        return None  # not this page, or not signed in again yet: kept for later
    session.pop(KEPT_FORM)
    if kept.get("user") != signed_in_user_id() or not kept_in_time(kept):
        return None
    return {"action": kept.get("action"), "fields": kept.get("fields") or {}}


@bp.before_request  # the pages only: the API and webhooks have no browser session
def _hold_kept_form() -> None:
    # Signing in again gives the browser a new, empty session (web/flow.py spend_approval): note
    # the kept form now, to carry it across if the same person signs in.
    kept = session.get(KEPT_FORM)
    if kept:
        g.kept_form = kept


@bp.after_request
def _carry_kept_form(response):
    kept = g.pop("kept_form", None)
    current = session_store.current()
    if (kept and current.rotated and KEPT_FORM not in current and isinstance(kept, dict)
            and kept.get("user") == current.user_id  # someone else signing in here never sees it
            and kept_in_time(kept)):  # nor does the same person, sign-ins later
        current[KEPT_FORM] = kept
    return response


@bp.get("/sign-in/again")
def sign_in_again() -> ResponseReturnValue:
    """"Confirm it's you again" from a change page: the password and second step now, even inside the
    window (/sign-in itself sends a recent sign-in straight on), then back to `next`."""
    next_url = safe_next(request.args.get("next"))
    user = signed_in_user()
    if user is None:
        return redirect(url_for("web.sign_in", next=next_url))
    return render_template("sign_in.html", next=next_url, username=user.username, signing_in_again=True)
