"""Microsoft Entra external MFA, the OpenID Connect side (docs/entra.md): discovery, our keys, and the
authorization endpoint Entra posts a person's browser to. From there the person verifies on the
usual pages (web/sign_in.py), and the answer goes back to Microsoft by a form the browser posts.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request, session, url_for

from edge import client_ip, db, services
from edge_errors import status_for
from mfa.approvals import AlreadyUsed
from mfa.entra import hints, signing_keys
from mfa.entra import requests as entra_requests
from mfa.entra.entra_keys import EntraKeys
from mfa.entra.profile import SIGN_IN_TTL, Declined, EntraConfig
from mfa.entra.requests import ENTRA, Answer, NotLinked, Unanswerable, refusal_answer
from mfa.errors import InvalidCredentials, MfaError
from mfa.unit_of_work import use_case
from models import Authentication
from web import CSP, session_store
from web.entra_pending import PENDING, Pending
from web.flow import end_flow, start_flow

bp = Blueprint("entra", __name__)
KEYS = "entra_keys"  # app.extensions: Entra's published keys, cached for the process


def register(app: Flask) -> None:
    config: EntraConfig | None = app.extensions["mfa"].settings.entra
    if config is None:
        return
    app.extensions[KEYS] = EntraKeys(config.keys_url, app.extensions["mfa"].services.clock)
    app.register_blueprint(bp, url_prefix=config.path or None)


def _config() -> EntraConfig:
    return current_app.extensions["mfa"].settings.entra


@bp.get("/.well-known/openid-configuration")
def discovery():
    issuer = _config().issuer
    return _json({
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "jwks_uri": f"{issuer}/keys",
        "scopes_supported": ["openid"],
        "response_types_supported": ["id_token"],
        "response_modes_supported": ["form_post"],
        "grant_types_supported": ["implicit"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claim_types_supported": ["normal"],
        "claims_supported": ["iss", "aud", "sub", "nonce", "iat", "nbf", "exp", "acr", "amr", "tid"],
    })


@bp.get("/keys")
def keys():
    with use_case(db()):
        signing_keys.ensure_one(db(), services(), _config().issuer)
        return _json(signing_keys.jwks(db()))


def _json(body: dict):
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=3600"  # Entra caches them for a day anyway
    return response


@bp.get("/authorize")
def authorize_probe():
    """Entra checks the endpoint answers; people arriving here by hand are told where to go."""
    return render_template("entra_endpoint.html")


@bp.post("/authorize")
def authorize():
    config = _config()
    try:
        to = entra_requests.destination(request.form, config)
    except Unanswerable as refusal:  # not Microsoft's return address, or not our client: post nothing anywhere
        with use_case(db()):
            entra_requests.unanswerable(db(), services(), refusal, client_ip())
        return render_template("entra_refused.html", message=refusal.message), 400
    try:
        parsed = entra_requests.parse(request.form, to)
        # Entra's keys may be fetched here: before any transaction opens.
        hint = hints.check(parsed.hint, config, current_app.extensions[KEYS], to.redirect_uri, services().clock.now())
    except Declined as refusal:
        with use_case(db()):
            entra_requests.declined(db(), services(), refusal, None, client_ip())
        return answer_page(refusal_answer(to, refusal.error, refusal.message))
    try:
        with use_case(db()):
            started = entra_requests.begin(db(), services(), parsed, hint, client_ip())
    except NotLinked as refusal:
        if not config.self_link or not hint.username:  # linked by an operator only
            return answer_page(refusal_answer(to, refusal.error, refusal.message))
        session_store.current().regenerate()  # a fresh session id for what follows (as a sign-in has)
        session[PENDING] = Pending(parsed, hint, services().clock.now()).to_session()
        return redirect(url_for("entra.link"))
    except Declined as refusal:
        return answer_page(refusal_answer(to, refusal.error, refusal.message))
    return _verify(started)


def _verify(started: entra_requests.Started):
    from web.sign_in import start_method  # the sign-in pages take over from here

    start_flow(started.authentication, ENTRA)
    return start_method(started.authentication.id, started.method)


@bp.route("/link", methods=["GET", "POST"])
def link():
    """An Entra user no one here answers for: the person signs in with their password here, then their
    second factor; the link is made once that approves (mfa/entra/requests.py begin_linking)."""
    pending = Pending.from_session(session.get(PENDING))
    if pending is None or services().clock.now() - pending.at >= SIGN_IN_TTL:
        session.pop(PENDING, None)
        if pending is not None:  # too slow: Microsoft is told, and starts again if the person wants
            return answer_page(refusal_answer(pending.request.destination, "access_denied",
                                              "You did not sign in here in time."))
        return render_template("entra_endpoint.html"), 400
    username = pending.hint.username
    if request.method == "GET":
        return render_template("entra_link.html", username=username)
    try:
        with use_case(db()):
            started = entra_requests.begin_linking(db(), services(), pending.request, pending.hint,
                                                   request.form.get("password", ""), client_ip())
    except Declined as refusal:
        session.pop(PENDING, None)
        return answer_page(refusal_answer(pending.request.destination, refusal.error, refusal.message))
    except MfaError as refusal:  # a wrong password or a locked account, as on the sign-in page
        message = (f"The password is not right, or there is no account called {username} here."
                   if isinstance(refusal, InvalidCredentials) else refusal.message)
        return render_template("entra_link.html", username=username, error=message,
                               field="password"), status_for(refusal)
    session.pop(PENDING, None)
    return _verify(started)


@bp.post("/link/cancel")
def link_cancel():
    pending = Pending.from_session(session.pop(PENDING, None))
    if pending is None:
        return render_template("entra_endpoint.html"), 400
    return answer_page(refusal_answer(pending.request.destination, "access_denied", "You cancelled signing in."))


def answer(auth: Authentication):
    """The sign-in Entra asked for has ended (approved, refused, cancelled or timed out): tell Microsoft."""
    end_flow()
    try:
        with use_case(db()):
            reply = entra_requests.answer(db(), services(), _config(), auth)
    except AlreadyUsed as refusal:
        return render_template("ended.html", message=refusal.message), 409
    return answer_page(reply)


def answer_page(reply: Answer):
    """The form the browser posts to Microsoft by itself (the button is for browsers without scripts)."""
    response = current_app.make_response(render_template(
        "entra_answer.html", answer=reply, approved=reply.approved, message=reply.fields.get("error_description")))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(reply.redirect_uri))
    response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", f"form-action 'self' {origin}")
    return response
