"""The time limit of a sign-in or change under way, on every page of it (WCAG 2.2.1).

Each flow page carries the seconds left (templates/_time_limit.html); app.js warns
WARN_BEFORE the end, and "Give me more time" posts here.
"""
from __future__ import annotations

from flask import flash, g, redirect, request, url_for

from edge import db, services
from mfa import time_limits
from mfa.authentications import AUTHENTICATION_TTL
from mfa.unit_of_work import use_case
from models import Authentication
from web import bp
from web.flow import safe_next
from web.guards import flow_required

MINUTES = int(AUTHENTICATION_TTL.total_seconds() // 60)


@bp.app_template_global()
def time_limit() -> dict | None:
    """For the page of a flow (the guard left its sign-in in g): what the countdown needs."""
    auth: Authentication | None = g.get("flow_auth")
    if auth is None:
        return None
    left = time_limits.time_left(auth, services().clock.now())
    if left is None:
        return None
    return {"seconds": left.seconds, "can_extend": left.can_extend,
            "minutes": int(time_limits.lifetime(auth).total_seconds() // 60),
            "warn_before": int(time_limits.WARN_BEFORE.total_seconds()),
            "what": "change" if auth.purpose == "change" else "sign-in"}


@bp.post("/sign-in/more-time")
@flow_required()
def more_time(auth: Authentication):
    with use_case(db()):
        extended = time_limits.extend(db(), services(), auth)
    what = "change" if auth.purpose == "change" else "sign-in"
    if extended:
        flash(f"You have {MINUTES} more minutes to finish your {what}.", "success")
    else:
        flash(f"You cannot have more time for this {what}. Finish it now, or start again.", "notice")
    return redirect(safe_next(request.form.get("next")) or url_for("web.verify"))
