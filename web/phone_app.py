"""The installable phone web app that approves push sign-ins (docs: PUSH_SPEC, "the web app").

Only the app's files are served here; it speaks to the device API (/device/v1) with its own
signed requests, never with cookies. Files live in web/phone/.
"""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, render_template, send_from_directory

PHONE_FILES = Path(__file__).resolve().parent / "phone"
NHS_BLUE = "#005eb8"
NHS_GREY_5 = "#f0f4f5"  # NHS.UK's page background

phone_app = Blueprint("phone_app", __name__, template_folder="templates")


def register(app: Flask) -> None:
    if "phone_app" not in app.blueprints:
        app.register_blueprint(phone_app)


def _service_name() -> str:
    return current_app.extensions["mfa"].settings.service_name


def _file(name: str, mimetype: str, max_age: int | None = None) -> Response:
    response = send_from_directory(PHONE_FILES, name, mimetype=mimetype, max_age=max_age)
    if max_age is None:  # the app's code: always revalidated (ETag), so an update reaches phones at once
        response.headers["Cache-Control"] = "no-cache"
    return response


@phone_app.get("/app")
def page():
    return render_template("phone_app.html", service_name=_service_name())


@phone_app.get("/app/app.js")
def script():
    return _file("app.js", "text/javascript")


@phone_app.get("/app/app.css")
def styles():
    return _file("app.css", "text/css")


@phone_app.get("/app/sw.js")
def service_worker():
    response = _file("sw.js", "text/javascript")
    # The worker sits at /app/sw.js but controls /app itself, above its own folder.
    response.headers["Service-Worker-Allowed"] = "/app"
    return response


@phone_app.get("/app/manifest.webmanifest")
def manifest():
    name = f"{_service_name()} Authenticator"
    body = {
        "id": "/app",
        "name": name,
        "short_name": "Authenticator" if len(name) > 12 else name,
        "description": f"Approve sign-ins to {_service_name()} from this phone.",
        "lang": "en-GB",
        "start_url": "/app",
        "scope": "/app",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": NHS_BLUE,
        "background_color": NHS_GREY_5,
        "icons": [
            {"src": "/app/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": "/app/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": "/app/icon-maskable-512.png", "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }
    response = Response(json.dumps(body, indent=2), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@phone_app.get("/app/<any('icon-192.png', 'icon-512.png', 'icon-maskable-512.png', 'apple-touch-icon.png'):name>")
def icon(name: str):
    return _file(name, "image/png", max_age=86400)
