"""Microsoft Entra external MFA, the OpenID Connect side (docs/entra.md): discovery, our keys, and the
authorization endpoint Entra posts a person's browser to. From there the person verifies on the
usual pages (web/sign_in.py), and the answer goes back to Microsoft by a form the browser posts.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, jsonify, render_template, request

from edge import client_ip, db, services
from mfa.approvals import AlreadyUsed
from mfa.entra import hints, signing_keys
from mfa.entra import requests as entra_requests
from mfa.entra.entra_keys import EntraKeys
from mfa.entra.profile import Declined, EntraConfig
from mfa.entra.requests import ENTRA, Answer, Unanswerable, refusal_answer
from mfa.unit_of_work import use_case
from models import Authentication
from web import CSP
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
    except Declined as refusal:
        return answer_page(refusal_answer(to, refusal.error, refusal.message))
    from web.sign_in import start_method  # the sign-in pages take over from here

    start_flow(started.authentication, ENTRA)
    return start_method(started.authentication.id, started.method)


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
