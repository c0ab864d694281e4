"""Security info ("Additional security verification"): methods, the default, call language.

Changes need a sign-in within the last 10 minutes; otherwise the person signs in again first.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from edge import client_ip, db, services
from mfa import browser_sessions, methods, security_info as info
from mfa.errors import MfaError
from mfa.unit_of_work import use_case
from web import bp
from web.flow import (current_session_id, forget_session, set_mode, signed_in_recently, signed_in_user,
                      start_flow)

PHONE_KINDS = {"mobile": "Authentication phone", "alternate": "Alternate authentication phone",
               "office": "Office phone"}


def _user_for_change():
    """The signed-in person, if they signed in recently enough to change things."""
    user = signed_in_user()
    if user is None or not signed_in_recently():
        flash("For your security, sign in again before changing your security info.", "notice")
        return None
    return user


def _again():
    return redirect(url_for("web.sign_in", next="/security-info"))


@bp.get("/security-info")
def security_info():
    user = signed_in_user()
    if user is None:
        return _again()
    verified = user.verified_methods()
    phones = {kind: next((m for m in verified if m.kind == kind), None) for kind in PHONE_KINDS}
    app = next((m for m in verified if m.type == "totp"), None)
    return render_template("security_info.html", user=user, methods=verified, phones=phones,
                           kinds=PHONE_KINDS, app=app)


@bp.post("/security-info/default")
def security_default():
    user = _user_for_change()
    if user is None:
        return _again()
    return _change(lambda: info.set_default(db(), services(), user, request.form.get("method_id"), client_ip(),
                                            keep_session=current_session_id()),
                   "Your default sign-in method has been changed.")


@bp.post("/security-info/language")
def security_language():
    user = _user_for_change()
    if user is None:
        return _again()
    return _change(lambda: info.set_language(db(), services(), user, request.form.get("language"), client_ip()),
                   "Your call language has been changed.")


@bp.post("/security-info/remove")
def security_remove():
    user = _user_for_change()
    if user is None:
        return _again()
    return _change(lambda: info.remove_method(db(), services(), user, request.form.get("method_id"), client_ip(),
                                              keep_session=current_session_id()),
                   "The method has been removed.")


@bp.post("/security-info/phone/<kind>")
def security_phone(kind: str):
    """Add or change a phone: it is saved only once verified (a texted code or `#` on a call)."""
    user = _user_for_change()
    if user is None:
        return _again()
    with use_case(db()):
        auth = info.begin_change(db(), services(), user, client_ip())
    start_flow(auth, "change")
    return redirect(url_for("web.register_phone", kind=kind))


@bp.post("/security-info/app")
def security_app():
    user = _user_for_change()
    if user is None:
        return _again()
    with use_case(db()):
        auth = info.begin_change(db(), services(), user, client_ip())
        method, _uri = methods.register_totp(db(), services(), auth.id, client_ip())
    start_flow(auth, "change")
    set_mode("totp-enrol", method.id)
    return redirect(url_for("web.register_app"))


@bp.post("/security-info/sign-out-everywhere")
def sign_out_everywhere():
    """Every session of this person ends, this one included (a lost laptop, a shared computer)."""
    user = signed_in_user()
    if user is None:
        return _again()
    with use_case(db()):
        browser_sessions.sign_out_everywhere(db(), services(), user, client_ip())
    forget_session()
    flash("You have been signed out everywhere: on this device and every other.", "success")
    return redirect(url_for("web.sign_in"))


def _change(use, done: str):
    try:
        with use_case(db()):
            use()
        flash(done, "success")
    except MfaError as refusal:
        flash(refusal.message, "error")
    return redirect(url_for("web.security_info"))
