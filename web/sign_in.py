"""Sign-in: password, then the default method starts by itself; "sign in another way"."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, session, url_for

from edge import client_ip, db, services
from edge_errors import status_for
from mfa import authentications, call_progress, challenges, checks, methods
from mfa.errors import MfaError, RateLimited
from mfa.method_types import Text, method_type
from mfa.telephony import DeliveryUnknown
from mfa.unit_of_work import Transactions, use_case
from models import Authentication
from web import bp, limiter
from web.flow import (end_flow, end_session, flow, safe_next, set_mode, signed_in_user_id, spend_approval,
                      start_flow)
from web.guards import flow_required

FAILED_CHALLENGE = {
    "no_answer": "The call was not answered.",
    "busy": "The line was busy.",
    "call_failed": "The call could not be connected.",
    "hung_up": "The call ended before your sign-in was verified.",
    "no_input": "No key was pressed during the call.",
    "wrong_key": "A key other than the one asked for was pressed.",
    "machine_answered": "The call went to voicemail.",
    "canceled": "The call was cancelled.",
    "delivery_failed": "The text message could not be delivered.",
    "do_not_call": "Whoever answered said they did not expect this call.",
}
# The call page's heading while the call is under way (mfa/call_progress.py); an ending without approval
# has CALL_DID_NOT_VERIFY, with its FAILED_CHALLENGE sentence below it.
CALL_HEADINGS = {"calling": "Answer the call", "ringing": "Your phone is ringing", "answered": "Press # now"}
CALL_DID_NOT_VERIFY = "That call did not verify you"
ENDED = {
    "expired": "This sign-in took too long and has expired.",
    "locked": "This account is locked after too many failed attempts. Try again in 15 minutes.",
    "fraud_reported": "You reported this sign-in as not you. The account is blocked: "
                      "contact your administrator to unblock it.",
    "too_many_attempts": "Too many wrong codes were entered.",
    "number_mismatch": "The number keyed on the call did not match the one on this screen, twice, so this "
                       "sign-in was stopped. If you did not try to sign in, tell your administrator.",
    "registered_meanwhile": "A way to verify was registered for this account while this sign-in was open. "
                            "Sign in again to use it.",
}


@bp.get("/")
def home():
    return redirect(url_for("web.account" if signed_in_user_id() else "web.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def sign_in():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("sign_in.html", next=next_url, username="")
    username = request.form.get("username", "")
    try:
        with use_case(db()):
            auth = authentications.start(db(), services(), username, request.form.get("password", ""), client_ip())
    except MfaError as refusal:
        return render_template("sign_in.html", next=next_url, username=username,
                               error=refusal.message, field="password"), status_for(refusal)
    start_flow(auth, "sign_in")
    session["next"] = next_url
    if auth.status == "approved":  # no second factor needed: spent at once, like any approval
        return _finish(auth, flow())
    if auth.status == "registration_required":
        return redirect(url_for("web.register"))
    return _start_method(auth.id, methods.default_method(auth.user))


@bp.app_template_filter("method_choice")
def method_choice(method) -> str:
    """How a method is offered on the pages: its type words it ("Text +44 •••• ••0123")."""
    try:
        return method_type(method).choice(method)
    except MfaError:  # a stored type this server does not offer
        return method.label


def _start_method(auth_id: str, method):
    """Begin a method: app codes need nothing sent; texts and calls start now."""
    try:
        mtype = method_type(method)
        if mtype.issues_challenge:
            challenges.start_challenge(Transactions(db()), services(), auth_id, method.id, client_ip())
        set_mode(mtype.sign_in_mode, method.id)
    except (RateLimited, DeliveryUnknown) as wait:  # the code form still helps: a code may arrive
        set_mode(mtype.sign_in_mode, method.id)
        flash(wait.message, "error")
    except MfaError as refusal:
        set_mode("choose")
        flash(refusal.message, "error")
    return redirect(url_for("web.verify"))


@bp.get("/verify")
@flow_required()
def verify(auth: Authentication):
    current = flow() or {}  # flow_required found one
    if auth.status == "approved":
        return _finish(auth, current)
    if not (auth.is_open() or auth.can_retry()):
        end_flow()
        message = ENDED.get(auth.reason if auth.reason in ENDED else auth.status, "This sign-in has ended.")
        return render_template("ended.html", message=message), 409
    mode = current.get("mode") or "choose"
    method = next((m for m in auth.user.methods if m.id == current.get("method")), None)
    failure = FAILED_CHALLENGE.get(auth.reason) if auth.can_retry() and auth.reason else None
    call = call_progress.of(db(), auth, services().clock.now())
    return render_template("verify.html", auth=auth, mode=mode, method=method, failure=failure,
                           call=call, call_heading=_call_heading(call),
                           next_steps=call_progress.next_steps(auth, method), code_minutes=Text.code_lifetime_minutes(),
                           registering=auth.registering, resend_in=_resend_in(auth))


def _call_heading(call: call_progress.CallProgress) -> str:
    if call.name == "answered" and call.number_match:
        return f"Enter {call.number_match} on your phone's keypad"
    return CALL_HEADINGS.get(call.name, CALL_DID_NOT_VERIFY)


def _resend_in(auth) -> int:
    if auth.last_sent_at is None:
        return 0
    waited = (services().clock.now() - auth.last_sent_at).total_seconds()
    return max(0, int(challenges.RESEND_AFTER.total_seconds() - waited))


@bp.post("/verify/code")
@limiter.limit("30 per minute")
@flow_required()
def verify_code(auth: Authentication):
    try:
        with use_case(db()):
            checks.check_code(db(), services(), auth.id, request.form.get("code", ""), client_ip())
    except MfaError as refusal:
        flash(refusal.message if refusal.code != "invalid_code" else
              f"{refusal.message} You have {refusal.extra['attempts_left']} more tries.", "code")
    enrolling_app = (flow() or {}).get("mode") == "totp-enrol"
    return redirect(url_for("web.register_app") if enrolling_app else url_for("web.verify"))


@bp.post("/verify/method")
@flow_required()
def verify_method(auth: Authentication):
    method = next((m for m in auth.user.verified_methods() if m.id == request.form.get("method_id")), None)
    if method is None:
        flash("Choose one of your methods.", "error")
        return redirect(url_for("web.verify_other"))
    return _start_method(auth.id, method)


@bp.get("/verify/other")
@flow_required()
def verify_other(auth: Authentication):
    return render_template("verify_other.html", methods=auth.user.verified_methods())


@bp.get("/verify/status.json")
@flow_required(otherwise=lambda: (jsonify({"status": "none"}), 404))
def verify_status(auth: Authentication):
    progress = call_progress.of(db(), auth, services().clock.now()).name  # the call page reloads when it changes
    return jsonify({"status": auth.status, "reason": auth.reason, "progress": progress})


def _finish(auth, current):
    """The second factor succeeded: a signed-in session, or back to security info. Once only."""
    next_url = session.pop("next", None)
    end_flow()
    try:
        spent = spend_approval(auth, current["purpose"])
    except MfaError as refusal:  # already used (a copied cookie, a second tab), too late, or locked meanwhile
        return render_template("ended.html", message=refusal.message), status_for(refusal)
    if current["purpose"] == "change":
        flash("Your security info has been saved.", "success")
        return redirect(url_for("web.security_info"))
    if spent.app_password is None:
        return redirect(next_url or url_for("web.account"))
    return render_template("registered.html", app_password=spent.app_password)


@bp.post("/sign-out")
def sign_out():
    end_session()
    flash("You have signed out.", "success")
    return redirect(url_for("web.sign_in"))
