"""Security info ("Additional security verification"): methods, the default, the language of calls and texts.

Changes need a sign-in within the last 10 minutes; otherwise the person signs in again first.
"""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from edge import client_ip, db, services
from mfa import cancellation, methods, push_devices, push_enrolment, security_info as info
from mfa.calls import end_calls
from mfa.errors import MfaError
from mfa.method_types import method_type
from mfa.phone_registration import may_register_phone
from mfa.unit_of_work import use_case
from models import User
from web import bp
from web.flow import current_session_id, forget_session, set_mode, start_flow
from web.guards import login_required
from web.registration import remember_enrolment
from web.remember_browser import forget_cookie, remembered_for

PHONE_KINDS = {"mobile": "Authentication phone", "alternate": "Alternate authentication phone",
               "office": "Office phone"}


@bp.get("/security-info")
@login_required("/security-info")
def security_info(user: User):
    verified = user.verified_methods()
    phones = {kind: next((m for m in verified if m.kind == kind), None) for kind in PHONE_KINDS}
    app = methods.registered_app(user)
    kinds = {kind: title for kind, title in PHONE_KINDS.items() if may_register_phone(kind, user.hybrid)}
    return render_template("security_info.html", user=user, methods=verified, phones=phones,
                           kinds=kinds, app=app, devices=push_devices.devices_of(db(), user),
                           remember_days=services().policy.remember_days_for(user),
                           remembered=remembered_for(user))


@bp.post("/security-info/default")
@login_required("/security-info", recent=True)
def security_default(user: User):
    return _change(lambda: info.set_default(db(), services(), user, request.form.get("method_id"), client_ip(),
                                            keep_session=current_session_id()),
                   "Your default sign-in method has been changed.")


@bp.post("/security-info/language")
@login_required("/security-info", recent=True)
def security_language(user: User):
    return _change(lambda: info.set_language(db(), services(), user, request.form.get("language"), client_ip()),
                   "The language for your calls and texts has been changed.")


@bp.get("/security-info/remove/<method_id>")
@login_required("/security-info", recent=True)
def security_remove_confirm(user: User, method_id: str):
    """Are you sure? Removing a method cannot be undone (adding it again means verifying it again)."""
    try:
        method = methods.owned_verified_method(user, method_id)
    except MfaError as refusal:
        flash(refusal.message, "error")
        return redirect(url_for("web.security_info"))
    device = push_devices.device_for(db(), method) if method_type(method).approved_on_device else None
    what = "Phone app" if device else PHONE_KINDS.get(method.kind or "", "Authenticator app")
    return render_template("security_remove.html", method=method, what=what, device=device)


@bp.post("/security-info/remove")
@login_required("/security-info", recent=True)
def security_remove(user: User):
    return _change(lambda: info.remove_method(db(), services(), user, request.form.get("method_id"), client_ip(),
                                              keep_session=current_session_id()),
                   "The method has been removed.")


@bp.post("/security-info/phone/<kind>")
@login_required("/security-info", recent=True)
def security_phone(user: User, kind: str):
    """Add or change a phone: it is saved only once verified (a texted code or `#` on a call)."""
    with use_case(db()):
        auth = info.begin_change(db(), services(), user, client_ip())
    start_flow(auth, "change")
    return redirect(url_for("web.register_phone", kind=kind))


@bp.post("/security-info/app")
@login_required("/security-info", recent=True)
def security_app(user: User):
    with use_case(db()):
        auth = info.begin_change(db(), services(), user, client_ip())
        method, _uri = methods.register_totp(db(), services(), auth.id, client_ip())
    start_flow(auth, "change")
    set_mode("totp-enrol", method.id)
    return redirect(url_for("web.register_app"))


@bp.post("/security-info/push")
@login_required("/security-info", recent=True)
def security_push(user: User):
    """Add a phone app: its set-up link, then a first request approved with the number proves it."""
    try:
        with use_case(db()):
            auth = info.begin_change(db(), services(), user, client_ip())
            enrolment = push_enrolment.register_push(db(), services(), auth.id, client_ip())
    except MfaError as refusal:  # e.g. as many phones as anyone may have
        flash(refusal.message, "error")
        return redirect(url_for("web.security_info"))
    start_flow(auth, "change")
    remember_enrolment(enrolment)
    return redirect(url_for("web.register_push"))


@bp.post("/security-info/sign-out-everywhere")
@login_required("/security-info")
def sign_out_everywhere(user: User):
    """Every session of this person ends, this one included (a lost laptop, a shared computer)."""
    with use_case(db()):
        to_hang_up = cancellation.sign_out_everywhere(db(), services(), user, client_ip())
    forget_session()
    end_calls(services(), to_hang_up)  # after the commit: never a network call inside a transaction
    flash("You have been signed out everywhere: on this device and every other.", "success")
    response = redirect(url_for("web.sign_in"))
    forget_cookie(response)  # every remembered browser was forgotten too: drop this one's token
    return response


def _change(use, done: str):
    try:
        with use_case(db()):
            use()
        flash(done, "success")
    except MfaError as refusal:
        flash(refusal.message, "error")
    return redirect(url_for("web.security_info"))
