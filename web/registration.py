"""The registration wizard: choose a method, prove it, then (only if asked for) an app password.

Security info reuses the same steps (a "change" flow) to add or replace a method.
"""
from __future__ import annotations

import io
from datetime import datetime

import segno
from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for

from edge import client_ip, db, services
from edge_errors import status_for
from mfa import challenges, methods, phone_registration, push_devices, push_enrolment
from mfa.authentications import can_continue
from mfa.errors import MfaError, RateLimited
from mfa.method_types import PushApp, method_type
from mfa.telephony import DeliveryUnknown
from mfa.unit_of_work import Transactions, use_case
from models import Authentication, User
from models.user import LANGUAGE_NAMES
from web import bp
from web.flow import flow, safe_next, set_mode
from web.guards import flow_required, login_required
from web.recovery import take_codes

PHONE_FIELDS = ("number", "delivery", "language")
PUSH_ENROL = "push-enrol"  # the flow's mode while the set-up page waits for the phone to open its link
NOT_ENROLLED_YET = ("We have not heard from your phone yet. Open the set-up link on your phone and select "
                    "'Add this phone' there, then try again.")


@bp.app_context_processor
def _call_languages() -> dict[str, dict[str, str]]:
    return {"languages": LANGUAGE_NAMES}  # the call-language choices, on every form that asks


@bp.get("/register")
@flow_required(registering=True)
def register(auth: Authentication):
    return _choose_page(auth)


def _choose_page(auth: Authentication, **extra):
    return render_template("register_choose.html",
                           kinds=phone_registration.phone_kinds_offered(db(), services(), auth.user.hybrid),
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
    if choice == PushApp.name:
        try:
            with use_case(db()):
                enrolment = push_enrolment.register_push(db(), services(), auth.id, client_ip())
        except MfaError as refusal:
            flash(refusal.message, "error")
            return redirect(url_for("web.register"))
        remember_enrolment(enrolment)
        return redirect(url_for("web.register_push"))
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


def remember_enrolment(enrolment: push_enrolment.Enrolment) -> None:
    """Keep the set-up link for its page and QR code: in the flow, which lives on the server
    (web/session_store.py), and encrypted there too, as it adds a phone to the account until used."""
    set_mode(PUSH_ENROL, enrolment.method.id, enrolment=services().vault.encrypt(enrolment.url).decode(),
             enrolment_expires=enrolment.expires_at.isoformat())


def _enrolment_url() -> str | None:
    current = flow() or {}
    sealed = current.get("enrolment")
    if current.get("mode") != PUSH_ENROL or not sealed:
        return None
    return services().vault.decrypt(sealed.encode())


@bp.get("/register/push")
@flow_required(registering=True)
def register_push(auth: Authentication):
    """The phone app's set-up link, as a QR code and a link; then its first request proves it works."""
    url = _enrolment_url()
    current = flow() or {}
    now = services().clock.now()
    state = push_devices.enrolment_state(db(), auth.user, current.get("method"), now) if url else None
    if url is None or state is None:  # nothing set up here, or replaced by a newer set-up
        return redirect(url_for("web.register"))
    left = datetime.fromisoformat(current["enrolment_expires"]) - now
    return render_template("register_push.html", url=url, qr_url=url_for("web.register_push_qr"), state=state,
                           minutes_left=max(1, -(-int(left.total_seconds()) // 60)))


@bp.get("/register/push/qr.svg")
@flow_required(registering=True, otherwise=lambda: abort(404))
def register_push_qr(auth: Authentication):
    url = _enrolment_url()
    if url is None:
        abort(404)
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=5, border=2, title="QR code to open on your phone")
    return Response(out.getvalue(), mimetype="image/svg+xml", headers={"Cache-Control": "no-store"})


@bp.get("/register/push/status.json")
@flow_required(registering=True, otherwise=lambda: (jsonify({"status": "none"}), 404), ended=True)
def register_push_status(auth: Authentication):
    """Polled by the set-up page (app.js): it goes on by itself once the phone has added itself."""
    now = services().clock.now()
    if not can_continue(auth, now):
        return jsonify({"status": "ended", "progress": None})
    state = push_devices.enrolment_state(db(), auth.user, (flow() or {}).get("method"), now)
    return jsonify({"status": state or "none", "progress": None})


@bp.post("/register/push")
@flow_required(registering=True)
def register_push_first_request(auth: Authentication):
    """"I've added my phone": the first request to it; approving it with the number registers the app."""
    method_id = (flow() or {}).get("method")
    try:
        challenges.start_challenge(Transactions(db()), services(), auth.id, method_id, client_ip())
    except RateLimited as wait:  # too many requests lately: the verify page offers what is left
        flash(wait.message, "error")
    except MfaError as refusal:
        flash(NOT_ENROLLED_YET if refusal.code == "device_not_enrolled" else refusal.message, "error")
        return redirect(url_for("web.register_push"))
    set_mode(PushApp.sign_in_mode, method_id, enrolment=None, enrolment_expires=None)
    return redirect(url_for("web.verify"))


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
    """The wizard's last page: set up, the recovery codes (shown once: web/recovery.py), and an app password
    offered to those who need one."""
    return render_template("registered.html", next_url=safe_next(request.args.get("next")) or url_for("web.account"),
                           codes=take_codes(user))



