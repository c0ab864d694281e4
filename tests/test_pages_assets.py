"""What a browser loads beside the pages: an icon at /favicon.ico, the NHS.UK font allowed by the
Content-Security-Policy (no console errors), and on the dev phone the words each recording says."""
from __future__ import annotations

import re

import pytest
import requests

from tests.helpers import ring, start_sign_in
from tests.personas import PASSWORD
from tests.test_pages_browser import chromium  # noqa: F401  (fixture)
from voice_prompts import catalogue
from voice_prompts.library import WORDS_SUFFIX
from web import CSP

NHSUK_FONT_HOST = "https://assets.nhs.uk"


def test_favicon_is_the_services_own_icon(client):
    with client.get("/favicon.ico") as response:  # a file response: closed after reading
        assert response.status_code == 200
        assert response.mimetype == "image/vnd.microsoft.icon"
        assert response.data[:4] == b"\x00\x00\x01\x00"  # an ICO file's header


def test_the_stand_in_has_an_icon_too(standin_server):
    response = requests.get(f"{standin_server.url}/favicon.ico", timeout=5)
    assert response.status_code == 200 and response.content[:4] == b"\x00\x00\x01\x00"


def test_the_csp_allows_the_font_host_the_nhsuk_styles_name(client):
    with client.get("/assets/nhsuk/nhsuk-frontend.min.css") as css:
        assert css.status_code == 200, "nhsuk-frontend is not installed (`make test` installs it with npm)"
        hosts = set(re.findall(r"url\((https://[^/)]+)/[^)]*\.woff2?\)", css.get_data(as_text=True)))
    assert hosts == {NHSUK_FONT_HOST}
    font_src = next(d for d in CSP.split(";") if d.strip().startswith("font-src")).split()
    assert NHSUK_FONT_HOST in font_src


def test_pages_log_no_console_errors_and_break_no_csp_rule(chromium, live, dave):  # noqa: F811
    """NHS.UK's font host stands in for itself (the tests run offline): any font answer will do,
    what matters is that the browser was allowed to ask."""
    context = chromium.new_context(base_url=live.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"{request.url}: {request.failure}"))
    fonts: list[str] = []

    def font_host(route):
        fonts.append(route.request.url)
        route.fulfill(status=200, body=b"", content_type="font/woff2")

    page.route(f"{NHSUK_FONT_HOST}/**", font_host)
    try:
        page.goto("/sign-in")
        page.get_by_label("Username").fill("dave")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("You're signed in").wait_for()
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    assert fonts, "the NHS.UK font was never asked for"
    assert problems == []


def test_each_recording_says_its_words_beside_it(app, client):
    library = app.extensions["mfa"].prompt_voice.library
    recording = library.recording("greeting", "cy-GB")
    if recording is None:
        pytest.fail("no fresh Welsh greeting recording: run `flask --app app prompts build`")
    words = client.get(recording.url_path.removesuffix(".wav") + WORDS_SUFFIX)
    assert words.status_code == 200 and words.mimetype == "text/plain"
    assert words.get_data(as_text=True) == catalogue.text("greeting", "cy-GB", library.service_for("cy-GB"))
    assert words.headers["Content-Language"] == "cy-GB"
    other_version = recording.url_path.replace(recording.url_path.split("/")[-2], "0" * 12)
    assert client.get(other_version.removesuffix(".wav") + WORDS_SUFFIX).status_code == 404


def test_the_dev_phone_shows_what_each_recording_says(live, phones, standin_server, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.wait_idle()
    transcript = phones.call(sid).transcript
    played = [i for i, event in enumerate(transcript) if event[0] == "play"]
    assert played, "the call played no recording"
    said = [transcript[i + 1] for i in played]
    assert all(event[0] == "words" and event[2] == "en-GB" for event in said), transcript
    greeting = catalogue.text("greeting", "en-GB", "Secure Sign-in")
    assert ("words", greeting, "en-GB") in said
    phone_page = requests.get(f"{standin_server.url}/phone", timeout=5).text
    assert f'<span class="words" lang="en-GB">“{greeting}”</span>' in phone_page.replace("&#39;", "'")
