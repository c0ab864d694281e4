"""The registration wizard: choose a method, prove it, then (only if asked for) an app password.

Security info reuses the same steps (a "change" flow) to add or replace a method.
"""
from __future__ import annotations

import io

import segno
from flask import Response, abort, flash, redirect, render_template, request, url_for

from edge import client_ip, db, services
from edge_errors import status_for
from mfa import methods, phone_registration
from mfa.errors import MfaError, RateLimited
from mfa.method_types import method_type
from mfa.telephony import DeliveryUnknown
from mfa.unit_of_work import Transactions, use_case
from models import Authentication, User
from models.user import LANGUAGE_NAMES
from web import bp
from web.flow import flow, safe_next, set_mode
from web.guards import flow_required, login_required

PHONE_FIELDS = ("number", "delivery", "language")


@bp.app_context_processor
def _call_languages() -> dict[str, dict[str, str]]:
    return {"languages": LANGUAGE_NAMES}  # the call-language choices, on every form that asks


@bp.get("/register")
@flow_required(registering=True)
def register(auth: Authentication):
    return _choose_page(auth)


def _choose_page(auth: Authentication, **extra):
    return render_template("register_choose.html", kinds=phone_registration.phone_kinds_for(auth.user.hybrid),
                           purpose=(flow() or {})["purpose"], **extra)


@bp.post("/register")
@flow_required(registering=True)
def register_choice(auth: Authentication):
    choice = request.form.get("method")
    if choice == "app":
        try:
            with use_case(db()):
                method, _uri = methods.register_totp(db(), services(), auth.id, client_ip())
        except MfaError as refusal:
            flash(refusal.message, "error")
            return redirect(url_for("web.register"))
        set_mode("totp-enrol", method.id)
        return redirect(url_for("web.register_app"))
    if phone_registration.may_register_phone(choice, auth.user.hybrid):
        return redirect(url_for("web.register_phone", kind=choice))
    return _choose_page(auth, error="Choose how you want to verify.", field="method-app"), 400


@bp.get("/register/app")
@flow_required(registering=True)
def register_app(auth: Authentication):
    if auth.status == "approved":
        return redirect(url_for("web.verify"))
    uri = _pending_uri(auth)
    if uri is None:
        return redirect(url_for("web.register"))
    secret = totp_secret(uri)
    return render_template("register_app.html", secret_groups=[secret[i:i + 4] for i in range(0, len(secret), 4)],
                           qr_url=url_for("web.register_app_qr"))


@bp.get("/register/app/qr.svg")
@flow_required(registering=True, otherwise=lambda: abort(404))
def register_app_qr(auth: Authentication):
    uri = _pending_uri(auth)
    if uri is None:
        abort(404)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=6, border=2, title="QR code for your authenticator app")
    return Response(out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


def _pending_uri(auth) -> str | None:
    try:
        with use_case(db()):
            return methods.pending_totp_uri(db(), services(), auth.user, (flow() or {}).get("method"))
    except MfaError:
        return None


def totp_secret(uri: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(uri).query)["secret"][0]


@bp.route("/register/phone/<kind>", methods=["GET", "POST"])
@flow_required(registering=True)
def register_phone(auth: Authentication, kind: str):
    if not phone_registration.may_register_phone(kind, auth.user.hybrid):
        abort(404)
    values = {f: request.form.get(f, "") for f in PHONE_FIELDS}
    values["language"] = values["language"] or auth.user.language
    if request.method == "GET":
        return render_template("register_phone.html", kind=kind, values=values)
    roaming = phone_registration.roaming_notice(values["number"])
    if roaming and request.form.get("charges_seen") != values["number"]:  # said before anything is sent
        return render_template("register_phone.html", kind=kind, values=values, roaming=roaming)
    delivery = phone_registration.delivery_for(kind, values["delivery"])
    try:
        registration = phone_registration.register_phone(
            Transactions(db()), services(), auth.id, values["number"], kind, delivery, client_ip(),
            language=values["language"])
    except DeliveryUnknown as unsure:  # it may arrive: show the code form, with the warning
        flash(unsure.message, "error")
        set_mode(method_type(unsure.challenge).sign_in_mode, unsure.challenge.method_id)
        return redirect(url_for("web.verify"))
    except MfaError as refusal:
        # "Wait N seconds" is about how we verify; an office phone has only the number to point at.
        field = "delivery" if refusal.code in ("bad_request", "rate_limited") and kind != "office" else "number"
        return render_template("register_phone.html", kind=kind, values=values, error=refusal.message,
                               field=field), status_for(refusal)
    # registration.notice (roaming charges) was shown and accepted before sending.
    set_mode(method_type(registration.challenge).sign_in_mode, registration.challenge.method_id)
    return redirect(url_for("web.verify"))


def send_again(auth: Authentication, method_id: str | None):
    """"Resend code" or "Call me again" while registering: the same phone, a new text or call."""
    try:
        challenge = phone_registration.send_again(Transactions(db()), services(), auth.id, method_id, client_ip())
        set_mode(method_type(challenge).sign_in_mode, challenge.method_id)
    except (RateLimited, DeliveryUnknown) as wait:  # the page still helps: a code may arrive, or wait
        flash(wait.message, "error")
    except MfaError as refusal:
        flash(refusal.message, "error")
        if refusal.code == "not_pending":  # that phone is gone (a newer attempt): choose again
            return redirect(url_for("web.register"))
    return redirect(url_for("web.verify"))


@bp.get("/register/done")
@login_required("/account")
def registered(user: User):
    """The wizard's last page: set up, and an app password offered to those who need one."""
    return render_template("registered.html", next_url=safe_next(request.args.get("next")) or url_for("web.account"))



