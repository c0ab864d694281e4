"""The phone web app's files (web/phone_app.py): what a phone needs to install and run it."""
from __future__ import annotations

import re
import struct

import pytest

from web import phone_app


@pytest.fixture
def phone(app):
    return app.test_client()  # web/__init__.py registers the phone app


def _get(client, path: str):
    """GET, read and closed: file responses otherwise leave their file open."""
    with client.get(path) as response:
        response.get_data()
    return response


def _service(app) -> str:
    return app.extensions["mfa"].settings.service_name


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_register_twice_is_harmless(app):
    phone_app.register(app)
    phone_app.register(app)
    assert "phone_app" in app.blueprints


def test_the_page_is_a_phone_page_with_the_service_name_and_no_session(app, phone):
    response = _get(phone, "/app")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'name="viewport"' in html
    assert f"{_service(app)} Authenticator" in html
    assert '<link rel="manifest" href="/app/manifest.webmanifest">' in html
    assert '<script src="/app/app.js" defer></script>' in html
    assert 'rel="apple-touch-icon" href="/app/apple-touch-icon.png"' in html
    assert "/assets/nhsuk/nhsuk-frontend.min.css" in html
    assert "Set-Cookie" not in response.headers  # nothing to remember about a phone opening the app
    assert response.headers["Cache-Control"] == "no-store"


def test_the_page_keeps_to_the_content_security_policy(phone):
    response = _get(phone, "/app")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "connect-src 'self'" in csp
    html = response.get_data(as_text=True)
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"javascript:", html, re.I)
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert re.search(r'\ssrc="/', tag), f"inline or foreign script: {tag}"
    # Everything the page loads comes from this server.
    for url in re.findall(r'\s(?:src|href)="([^"#]+)"', html):
        assert url.startswith("/"), url


def test_the_number_box_suits_a_phone_keypad(phone):
    html = _get(phone, "/app").get_data(as_text=True)
    box = re.search(r"<input[^>]*data-part=\"number\"[^>]*>", html, re.S)
    assert box, "no number box"
    for attribute in ('inputmode="numeric"', 'autocomplete="one-time-code"', 'pattern="[0-9]*"', 'maxlength="2"'):
        assert attribute in box.group(0)
    assert "Enter the number shown on the sign-in screen" in html


@pytest.mark.parametrize("path, mimetype", [("/app/app.js", "text/javascript"), ("/app/app.css", "text/css")])
def test_the_app_code_is_always_revalidated(phone, path, mimetype):
    response = _get(phone, path)
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers.get("ETag")


def test_the_service_worker_may_control_the_app_page_above_its_folder(phone):
    response = _get(phone, "/app/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Service-Worker-Allowed"] == "/app"
    script = response.get_data(as_text=True)
    assert 'addEventListener("push"' in script and 'addEventListener("notificationclick"' in script
    assert "/device/" not in script  # answers from the device API are never cached or touched here


def test_the_manifest_makes_the_app_installable(app, phone):
    response = _get(phone, "/app/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert manifest["name"] == f"{_service(app)} Authenticator"
    assert manifest["short_name"] and len(manifest["short_name"]) <= 15
    assert manifest["start_url"] == "/app"
    assert manifest["scope"] == "/app"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#005eb8"
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any")} <= sizes
    assert any(purpose == "maskable" for _, purpose in sizes)
    for icon in manifest["icons"]:
        served = _get(phone, icon["src"])
        assert served.status_code == 200 and served.mimetype == icon["type"] == "image/png"
        width, height = _png_size(served.get_data())
        assert f"{width}x{height}" == icon["sizes"]


def test_the_manifest_names_the_configured_service(app_config):
    from app import create_app

    other = create_app({**app_config, "SERVICE_NAME": "Trust Sign-in"})
    manifest = _get(other.test_client(), "/app/manifest.webmanifest").get_json(force=True)
    assert manifest["name"] == "Trust Sign-in Authenticator"
    other.extensions["mfa"].engine.dispose()


def test_the_page_offers_a_set_up_link_to_paste(phone):
    """The way in for an iPhone's Home Screen app, which the link itself cannot open."""
    html = _get(phone, "/app").get_data(as_text=True)
    assert '<label class="nhsuk-label nhsuk-label--s" for="enrol-link">Paste the set-up link</label>' in html
    assert ("On your computer's security info page, copy the link under the QR code, send it to this phone, "
            "and paste it here.") in html
    box = re.search(r'<input[^>]*id="enrol-link"[^>]*>', html, re.S)
    assert box, "no box for the link"
    for attribute in ('type="text"', 'autocomplete="off"', 'autocapitalize="none"', 'spellcheck="false"',
                      'aria-describedby="enrol-link-hint"'):
        assert attribute in box.group(0)
    assert "Set up again with a new link" in html


def test_the_apple_touch_icon_is_a_square_png(phone):
    response = _get(phone, "/app/apple-touch-icon.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert _png_size(response.get_data()) == (180, 180)


def test_only_the_app_icons_are_served_from_its_folder(phone):
    assert _get(phone, "/app/make_icons.py").status_code == 404
    assert _get(phone, "/app/icon-64.png").status_code == 404
