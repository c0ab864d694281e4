"""Recovery codes on the pages: shown once at the end of registration and from security info, and
the form that takes a recovery code or a helpdesk's pass instead of a method (docs/recovery.md).

A new set waits for the one page that shows it encrypted under DATA_KEY in the server-side
session (as a new app password does, web/account.py), and is gone once shown.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import flash, redirect, render_template, request, session, url_for

from edge import db, services
from mfa import checks, recovery_codes
from mfa.errors import Conflict
from mfa.unit_of_work import use_case
from models import Authentication, User
from models.states import Reason
from web import bp
from web.flow import flow
from web.guards import flow_required, login_required

JUST_MADE = "recovery_codes_made"  # session key: the new set, until its page is shown
# Session key: the reason the sign-in that opened this session was approved (models/states.py Reason),
# written by the server once the approval is spent. New codes need `verified` (mfa/recovery_codes.renew).
APPROVED_BY = "approved_by"
SHOWN_WITHIN = timedelta(minutes=10)
BACKUPS = (Reason.RECOVERY_CODE, Reason.ACCESS_PASS)  # approvals that proved no method
SHOWN_ONCE = ("Recovery codes are shown only once. If you did not save them, get new ones from security info "
              "(the old ones then stop working).")


AFTER_BACKUP = ("You signed in with a recovery code or a pass from the helpdesk, so you cannot get new recovery "
                "codes in this session. If you have lost your phone, add your new phone or app below first. Then "
                "sign out, sign in again with your phone or app, and get new codes.")


def note_approval(auth: Authentication) -> None:
    """This browser's new session was opened by `auth`: keep how it was approved (after the rotation)."""
    session[APPROVED_BY] = auth.reason


def make_codes(auth: Authentication) -> None:
    """The first set at the end of a registration completed with a method (nothing otherwise), kept
    for its one page."""
    try:
        with use_case(db()):
            codes = recovery_codes.generate_at_registration(db(), services(), auth)
    except Conflict:
        return
    keep_codes(auth.user, codes)


def keep_codes(user: User, codes: list[str]) -> None:
    """A new set for `user`, kept encrypted for its one page."""
    session[JUST_MADE] = {"user": user.id, "codes": services().vault.encrypt(json.dumps(codes)).decode(),
                          "made_at": services().clock.now().isoformat()}


def after_backup(auth: Authentication) -> str:
    """What the page after a sign-in with a recovery code or a pass says: how to get a method back."""
    used = ("You signed in with a recovery code. You have {} left.".format(
        recovery_codes.remaining(db(), auth.user_id)) if auth.reason == Reason.RECOVERY_CODE
        else "You signed in with a temporary access pass.")
    if auth.registering:
        return f"{used} You have not set up a way to verify yet: add a phone or an app below now."
    return f"{used} If you have lost your phone, add your new one in security info and remove the old one."


def take_codes(user: User) -> list[str] | None:
    """The set just made for `user`, once (then gone); None on a reload, or when it waited too long."""
    made = session.pop(JUST_MADE, None)
    if not isinstance(made, dict) or made.get("user") != user.id:
        return None
    try:
        if services().clock.now() - datetime.fromisoformat(made["made_at"]) >= SHOWN_WITHIN:
            return None
        return list(json.loads(services().vault.decrypt(made["codes"].encode())))
    except (KeyError, TypeError, ValueError):
        return None


@bp.before_request
def _drop_unshown_codes() -> None:
    """Codes whose page (the wizard's last, web/registration.py, or security info's) was never opened
    leave the session at the next page view after SHOWN_WITHIN."""
    made = session.get(JUST_MADE)
    if made is None or request.endpoint in ("web.registered", "web.security_recovery_codes_made"):
        return
    try:
        stale = services().clock.now() - datetime.fromisoformat(made["made_at"]) >= SHOWN_WITHIN
    except (KeyError, TypeError, ValueError):
        stale = True
    if stale:
        session.pop(JUST_MADE)


@bp.app_template_global()
def recovery_codes_left(user: User) -> dict:
    """For security info's "Recovery codes" row: how many are left, and whether a set exists at all."""
    return {"left": recovery_codes.remaining(db(), user.id), "any": recovery_codes.has_codes(db(), user.id)}


@bp.post("/security-info/recovery-codes")
@login_required("/security-info", recent=True)
def security_recovery_codes(user: User):
    approved_by = session.get(APPROVED_BY)
    try:
        with use_case(db()):
            codes = recovery_codes.renew(db(), services(), user, approved_by)
    except Conflict as refusal:
        flash(AFTER_BACKUP if approved_by in BACKUPS else refusal.message, "error")
        return redirect(url_for("web.security_info"), 303)
    keep_codes(user, codes)
    return redirect(url_for("web.security_recovery_codes_made"), 303)  # a reload shows, never makes, codes


@bp.get("/security-info/recovery-codes")
@login_required("/security-info")
def security_recovery_codes_made(user: User):
    codes = take_codes(user)
    if codes is None:
        flash(SHOWN_ONCE, "notice")
        return redirect(url_for("web.security_info"))
    return render_template("recovery_codes.html", codes=codes,
                           continue_url=url_for("web.security_info"))


@bp.get("/verify/recovery")
@flow_required()
def verify_recovery(auth: Authentication):
    """"Use a recovery code or a pass from the helpdesk": a form that posts to the same code check.
    Only for a sign-in: a change to security info proves the new method itself (mfa/checks.py)."""
    if (flow() or {}).get("purpose") != checks.TAKES_BACKUP:
        return redirect(url_for("web.verify"))
    return render_template("verify_recovery.html", registering=auth.registering)
