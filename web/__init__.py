"""Browser pages: sign-in with the second factor, registration, security info, app passwords.

Pages call the same domain functions as the JSON API; no rule lives here twice.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Flask, abort, send_from_directory, session
from flask_wtf.csrf import CSRFProtect

from web.session_store import DatabaseSessionInterface

log = logging.getLogger("mfa.web")

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static/web")
csrf = CSRFProtect()

NHSUK_ASSETS = Path(__file__).resolve().parent.parent / "node_modules" / "nhsuk-frontend" / "dist" / "nhsuk"
STATIC = Path(__file__).resolve().parent / "static"
# No inline script anywhere; frames refused; forms post only here. Fonts also from NHS.UK's own
# host: the nhsuk-frontend styles load the Frutiger font from there (its @font-face rules).
NHSUK_FONTS = "https://assets.nhs.uk"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       f"font-src 'self' {NHSUK_FONTS}; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
       "base-uri 'none'")


def register(app: Flask) -> None:
    from api import bp as api_bp
    from devices.views import bp as devices_bp
    from ivr.webhooks import bp as twilio_bp
    from web import (account, change_window, entra, errors, phone_app, rate_limits, registration,  # noqa: F401
                     remember_browser, security_info, sign_in, time_limit)  # (routes)

    settings = app.extensions["mfa"].settings
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # tied to the session instead
    app.register_blueprint(bp)
    phone_app.register(app)
    entra.register(app)  # only when EAM_ISSUER is set
    app.session_interface = DatabaseSessionInterface()

    @app.before_request  # before CSRF's check, which reads the session
    def _session_store_unavailable():
        # The session could not be read: let the outage handler answer (503), as for any query.
        error = getattr(session, "load_error", None)
        if error is not None:
            raise error

    csrf.init_app(app)
    errors.install(app)  # after the API's handlers: pages get the service's own error pages
    csrf.exempt(api_bp)  # API keys, not cookies
    csrf.exempt(twilio_bp)  # Twilio signatures, not cookies
    csrf.exempt(devices_bp)  # the phone app's signatures, not cookies
    csrf.exempt(entra.authorize)  # Entra's form: its signed id_token_hint and one-use nonce, not cookies
    if not NHSUK_ASSETS.exists():
        log.warning("nhsuk-frontend is not installed (run `make run` or `npm install`): pages will be unstyled")

    @app.get("/assets/nhsuk/<path:filename>")
    def nhsuk_asset(filename: str):
        if not NHSUK_ASSETS.exists():
            abort(404)
        return send_from_directory(NHSUK_ASSETS, filename, max_age=86400)

    @app.get("/favicon.ico")
    def favicon():  # browsers ask for it on every site, whatever the page links
        return send_from_directory(STATIC, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                                   max_age=86400)

    @app.context_processor
    def _service_name():
        return {"service_name": settings.service_name}

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # Last, once every route exists: the API's, the phone app's and the pages' limits (docs/limits.md).
    rate_limits.register(app)
