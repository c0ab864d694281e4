"""Sign-in: password, then the default method starts by itself; "sign in another way"."""
from __future__ import annotations

from flask import flash, get_flashed_messages, jsonify, redirect, render_template, request, session, url_for

from edge import client_ip, db, services
from edge_errors import status_for
from mfa import authentications, call_progress, challenges, checks, limits, methods, push_devices
from mfa.errors import MfaError, RateLimited, whole_seconds
from mfa.method_types import Call, PushApp, Text, method_type, offered
from mfa.telephony import DeliveryUnknown
from mfa.unit_of_work import Transactions, use_case
from models import Authentication
from models.states import Reason
from mfa.authentications import can_continue
from mfa.entra import requests as entra_requests
from mfa.entra.requests import ENTRA
from web import bp, entra, reasons, recovery
from web.flow import (cancel_flow, current_auth, end_flow, end_session, flow, safe_next, set_mode, signed_in_recently,
                      signed_in_user, signed_in_user_id, spend_approval, start_flow)
from web.guards import flow_required
from web.remember_browser import browser_token, mark_remembered_sign_in, offer_after
from web.registration import PUSH_ENROL, send_again

# The call page's heading while the call is under way (mfa/call_progress.py); an ending without approval
# has CALL_DID_NOT_VERIFY, with its reason's sentence (web/reasons.py) below it.
CALL_HEADINGS = {"calling": "Answer the call", "ringing": "Your phone is ringing", "answered": "Press # now"}
CALL_DID_NOT_VERIFY = "That call did not verify you"
ENTER = {"username": "Enter your username", "password": "Enter your password"}


@bp.get("/")
def home():
    return redirect(url_for("web.account" if signed_in_user_id() else "web.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"])  # limits: web/rate_limits.py
def sign_in():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if signed_in_user_id() and signed_in_recently():  # nothing to do here: on to where they were going
            return redirect(next_url or url_for("web.account"))
        again = signed_in_user()  # signed in a while ago: a change asks for the password again
        return render_template("sign_in.html", next=next_url, username=again.username if again else "",
                               signing_in_again=again is not None)
    username = request.form.get("username", "")
    empty = next((name for name in ("username", "password") if not request.form.get(name)), None)
    if empty is not None:
        return render_template("sign_in.html", next=next_url, username=username, error=ENTER[empty], field=empty), 400
    try:
        with use_case(db()):
            # Signing in again (for a change) always asks for the second step: no remembered browser.
            remembered = None if signed_in_user_id() else browser_token()
            auth = authentications.start(db(), services(), username, request.form.get("password", ""), client_ip(),
                                         remembered_token=remembered)
    except MfaError as refusal:
        return render_template("sign_in.html", next=next_url, username=username,
                               error=refusal.message, field=_field_of(refusal)), status_for(refusal)
    start_flow(auth, "sign_in")
    session["next"] = next_url
    if auth.status == "approved":  # no second factor needed: spent at once, like any approval
        return _finish(auth, flow())
    if auth.status == "registration_required":
        return redirect(url_for("web.register"))
    return start_method(auth.id, methods.method_to_start(db(), services(), auth.user))


def _field_of(refusal: MfaError) -> str:
    """The box the refusal is about: the username when it names it, else the password."""
    return "username" if refusal.extra.get("field") == "username" else "password"


@bp.app_template_filter("method_choice")
def method_choice(method) -> str:
    """How a method is offered on the pages: its type words it ("Text +44 •••• ••0123")."""
    try:
        return method_type(method).choice(method)
    except MfaError:  # a stored type this server does not offer
        return method.label


def start_method(auth_id: str, method):
    """Begin a method: app codes need nothing sent; texts, calls and pushes start now."""
    try:
        mtype = method_type(method)
        if mtype.issues_challenge:
            challenges.start_challenge(Transactions(db()), services(), auth_id, method.id, client_ip())
        set_mode(mtype.sign_in_mode, method.id, push_limited=False)
    except (RateLimited, DeliveryUnknown) as wait:  # the code form still helps: a code may arrive
        # Too many requests to the phone app (MFA fatigue): its page then points at another way first.
        limited = isinstance(wait, RateLimited) and mtype.approved_on_device
        set_mode(mtype.sign_in_mode, method.id, push_limited=limited)
        flash(wait.message, "error")
    except MfaError as refusal:
        set_mode("choose")
        flash(reasons.refusal(refusal), "error")
    return redirect(url_for("web.verify"))


@bp.get("/verify")
@flow_required(ended=True)
def verify(auth: Authentication):
    current = flow() or {}  # flow_required found one
    if auth.status == "approved":
        return _finish(auth, current)
    if current.get("purpose") == ENTRA and not can_continue(auth, services().clock.now()):
        return entra.answer(auth)  # refused, cancelled or timed out: Microsoft is told no
    if not (auth.is_open() or auth.can_retry()):
        end_flow()
        get_flashed_messages()  # the refused step's own words ("not waiting…") would only muddle this page's
        message = reasons.ending(auth.status, auth.reason)
        return render_template("ended.html", message=message, timed_out=auth.status == "expired",
                               purpose=current.get("purpose"),
                               minutes=int(authentications.AUTHENTICATION_TTL.total_seconds() // 60)), 409
    mode = current.get("mode") or "choose"
    if mode == PUSH_ENROL:  # the phone app's set-up page, until its first request
        return redirect(url_for("web.register_push"))
    method = next((m for m in auth.user.methods if m.id == current.get("method")), None)
    failure = reasons.sentence(auth.reason) if auth.can_retry() else None
    now = services().clock.now()
    call = call_progress.of(db(), auth, now)
    push = push_devices.pending_push(db(), auth.id, now) if mode == PushApp.sign_in_mode else None
    return render_template("verify.html", auth=auth, mode=mode, method=method, failure=failure,
                           call=call, call_heading=_call_heading(call),
                           push=push, push_minutes=_minutes_until(push.expires_at, now) if push else None,
                           push_limited=current.get("push_limited", False),
                           next_steps=call_progress.next_steps(auth, method), code_minutes=Text.code_lifetime_minutes(),
                           registering=auth.registering, resend_in=_resend_in(auth),
                           sends_left=max(0, _max_sends() - auth.sends), max_sends=_max_sends(),
                           purpose=current.get("purpose"), start_again_url=_start_again_url(current))


def _start_again_url(current: dict) -> str:
    """A change starts again from security info; a sign-in from the password."""
    return url_for("web.security_info" if current.get("purpose") == "change" else "web.sign_in")


def _minutes_until(when, now) -> int:
    """Whole minutes left, rounded up: "2 minutes" for a new request, never "0"."""
    return max(1, -(-int((when - now).total_seconds()) // 60))


def _call_heading(call: call_progress.CallProgress) -> str:
    if call.name == "answered" and call.number_match:
        return f"Enter {call.number_match} on your phone's keypad"
    return CALL_HEADINGS.get(call.name, CALL_DID_NOT_VERIFY)


def _max_sends() -> int:
    return services().limits.number(limits.SENDS_PER_SIGN_IN)


def _resend_in(auth) -> int:
    if auth.last_sent_at is None:
        return 0
    wait = services().limits.window(limits.RESEND_WAIT)
    remaining = (auth.last_sent_at + wait - services().clock.now()).total_seconds()
    return whole_seconds(remaining) if remaining > 0 else 0  # rounded up: the button never wakes too soon


@bp.post("/verify/code")
@flow_required()
def verify_code(auth: Authentication):
    try:
        with use_case(db()):
            checks.check_code(db(), services(), auth.id, request.form.get("code", ""), client_ip())
    except MfaError as refusal:
        flash(reasons.refusal(refusal), "code")
        if request.form.get("from") == "recovery":  # the recovery code form shows its own refusal
            return redirect(url_for("web.verify_recovery"))
    enrolling_app = (flow() or {}).get("mode") == "totp-enrol"
    return redirect(url_for("web.register_app") if enrolling_app else url_for("web.verify"))


@bp.post("/verify/method")
@flow_required()
def verify_method(auth: Authentication):
    if auth.registering:
        being_set_up = _push_being_set_up(auth, request.form.get("method_id"))
        if being_set_up is not None:  # "Send a new request" to the phone app being set up
            return start_method(auth.id, being_set_up)
        return send_again(auth, request.form.get("method_id"))  # "Resend code" or "Call me again"
    method = next((m for m in _usable(auth) if m.id == request.form.get("method_id")), None)
    if method is None:
        flash("Choose one of your methods.", "error")
        return redirect(url_for("web.verify_other"))
    return start_method(auth.id, method)


def _push_being_set_up(auth: Authentication, method_id: str | None):
    """The phone app this registration is setting up, when that is what the form names."""
    return next((m for m in auth.user.methods if m.id == method_id and not m.is_verified
                 and offered(m) and method_type(m).approved_on_device), None)


@bp.get("/verify/other")
@flow_required()
def verify_other(auth: Authentication):
    return render_template("verify_other.html", methods=_usable(auth), purpose=(flow() or {}).get("purpose"))


def _usable(auth: Authentication) -> list:
    """The methods this sign-in may switch to: for Entra, only those Entra accepts (its `amr`)."""
    with use_case(db()):
        for_entra = entra_requests.usable_methods(db(), services(), auth)
        return for_entra if for_entra is not None else methods.methods_to_offer(db(), services(), auth.user)


@bp.get("/verify/status.json")
@flow_required(otherwise=lambda: (jsonify({"status": "none"}), 404), ended=True)
def verify_status(auth: Authentication):
    progress = call_progress.of(db(), auth, services().clock.now()).name  # the call page reloads when it changes
    return jsonify({"status": auth.status, "reason": auth.reason, "progress": progress})


def _finish(auth, current):
    """The second factor succeeded: a signed-in session, or back to security info. Once only."""
    if current["purpose"] == ENTRA:  # Entra asked for it: the answer goes back to Microsoft
        return entra.answer(auth)
    next_url = session.pop("next", None)
    end_flow()
    try:
        spend_approval(auth, current["purpose"])
    except MfaError as refusal:  # already used (a copied cookie, a second tab), too late, or locked meanwhile
        return render_template("ended.html", message=refusal.message), status_for(refusal)
    if current["purpose"] != "change":  # a new session: how it was approved decides new recovery codes
        recovery.note_approval(auth)
    if current["purpose"] == "change":
        flash("Your security info has been saved.", "success")
        return redirect(url_for("web.security_info"))
    if auth.reason in recovery.BACKUPS:  # a recovery code or a pass: no method was proved (docs/recovery.md)
        flash(recovery.after_backup(auth), "notice")
        return redirect(url_for("web.security_info") if auth.registering else next_url or url_for("web.account"))
    if auth.registering:  # the wizard's last page: recovery codes, once, and an app password for those who need one
        recovery.make_codes(auth)
        return redirect(url_for("web.registered", next=next_url))
    if auth.reason == Reason.REMEMBERED_BROWSER:
        mark_remembered_sign_in()
    elif auth.reason == Reason.VERIFIED and offer_after(next_url):  # "don't ask again on this browser?"
        return redirect(url_for("web.remember_browser"))
    return redirect(next_url or url_for("web.account"))


@bp.post("/sign-in/cancel")
def cancel():
    """Leave the sign-in or change under way, from any of its pages: it ends on the server too."""
    current = flow() or {}
    purpose = current.get("purpose")
    auth = current_auth() if purpose == ENTRA else None
    cancel_flow()
    if auth is not None:  # Microsoft is told the person gave up
        return entra.answer(auth)
    if purpose == "change":
        flash("You cancelled the change. Your security info has not changed.", "notice")
        return redirect(url_for("web.security_info"))
    if signed_in_user_id():
        return redirect(url_for("web.account"))
    # A sign-in call rings on (mfa/cancellation.py: its answerer may still report it), so say so.
    on_the_call_page = current.get("mode") == Call.sign_in_mode
    calling = " If we are still calling you, you can ignore the call." if on_the_call_page else ""
    flash(f"You cancelled signing in. You have not been signed in.{calling}", "notice")
    return redirect(url_for("web.sign_in"))


@bp.post("/sign-out")
def sign_out():
    end_session()
    flash("You have signed out.", "success")
    return redirect(url_for("web.sign_in"))
