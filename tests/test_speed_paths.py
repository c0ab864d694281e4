"""The shortcuts the hot paths take (docs/performance.md) give the same answers as the long way."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import ivr.twiml as twiml
from bench import bare_app
from ivr.call_flow import ASK, FAREWELLS, FIRST_PROMPT, Hangup, Listen, Redirect, Speak
from tests.helpers import post_form

KEYS_URL = "https://mfa.example/twilio/voice/keys?challenge=0f8c&turn=1"
NO_INPUT_URL = "https://mfa.example/twilio/voice/no-input?challenge=0f8c&turn=1"


def opening(url_suffix: str = "") -> list:
    return [Listen(("greeting", *ASK), KEYS_URL + url_suffix), Redirect(NO_INPUT_URL + url_suffix)]


def number_opening() -> list:
    return [Listen(FIRST_PROMPT["number"], KEYS_URL, num_digits=2, timeout=4), Redirect(NO_INPUT_URL)]


@pytest.mark.parametrize("language", ["en-GB", "cy-GB"])
@pytest.mark.parametrize("steps", [opening(), number_opening(), *([Speak(f), Hangup()] for f in FAREWELLS),
                                   [Hangup()]])
def test_a_twiml_document_filled_in_is_the_one_the_twilio_library_builds(app, steps, language):
    voice = app.extensions["mfa"].prompt_voice
    first, again = twiml.render(steps, language, voice), twiml.render(steps, language, voice)
    assert first == again == twiml._render(tuple(steps), language, voice)
    ET.fromstring(first.encode())  # well-formed, & in the URLs escaped


def test_odd_urls_are_filled_in_as_the_twilio_library_escapes_them(app):
    """Slots are filled in one pass (a URL that looks like another slot stays as it is), and
    newlines, tabs, quotes, & and < are escaped exactly as the library escapes attributes."""
    voice = app.extensions["mfa"].prompt_voice
    odd = [Listen(("greeting", *ASK), 'https://slot.invalid/1/?a="b"&c=<d>\n\te'), Redirect(NO_INPUT_URL)]
    assert twiml.render(odd, "en-GB", voice) == twiml._render(tuple(odd), "en-GB", voice)


def test_each_document_is_built_once_then_only_filled_in(app, monkeypatch):
    voice = app.extensions["mfa"].prompt_voice
    built: list[object] = []
    real = twiml.VoiceResponse

    def counted():
        built.append(real())
        return built[-1]

    monkeypatch.setattr(twiml, "VoiceResponse", counted)
    documents = {twiml.render(opening(str(n)), "en-GB", voice) for n in range(3)}
    assert len(built) == 1 and len(documents) == 3  # one build, three calls' own URLs
    gather = ET.fromstring(sorted(documents)[2].encode()).find("Gather")
    assert gather is not None and gather.get("action") == KEYS_URL + "2"
    # A gather of another shape (two digits, a shorter timeout) is a document of its own.
    number = ET.fromstring(twiml.render(number_opening(), "en-GB", voice).encode()).find("Gather")
    assert len(built) == 2 and number is not None
    assert (number.get("numDigits"), number.get("timeout")) == ("2", "4")


def test_the_bare_reference_reads_one_user_by_primary_key(app, bob):
    bare = bare_app.create_app(app.extensions["mfa"].engine.url.render_as_string(hide_password=False))
    client = bare.test_client()
    try:
        assert client.get(bare_app.BARE_PATH + bob.id).json == {"id": bob.id, "role": "admin"}
        assert client.get(bare_app.BARE_PATH + "nobody").status_code == 404
        assert "X-Request-Id" not in client.get(bare_app.BARE_PATH + bob.id).headers  # none of the app's hooks
    finally:
        bare.extensions["bare_engine"].dispose()


def test_webhook_and_page_view_requests_skip_the_rate_limiter(app, client, monkeypatch):
    limiter = app.extensions["mfa_limiter"]
    looked_up: list[tuple] = []
    real = limiter.limit_manager.resolve_limits

    def counted(*args, **kwargs):
        looked_up.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", counted)
    client.post("/twilio/sms/status")  # signature-checked, never limited (docs/limits.md)
    client.get("/sign-in")  # a page's GET: only form posts are counted
    client.get("/healthz")
    assert looked_up == []
    post_form(client, "/sign-in", {"username": "nobody", "password": "wrong password"})  # a form post: looked up
    assert looked_up
