"""Every URL handed to Twilio reaches the view meant to answer it.

ivr/webhook_urls.py builds the URLs and the route decorators use its path constants;
this checks the two still meet, through the app's own URL map (no request needed).
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ivr.webhook_urls import WebhookUrls

BASE = "https://mfa.example.org"
URLS = WebhookUrls(BASE)


@pytest.mark.parametrize(("url", "method", "endpoint", "query"), [
    (URLS.voice_answer("c1"), "POST", "twilio.voice_answer", {"challenge": ["c1"]}),
    (URLS.voice_status("c1"), "POST", "twilio.voice_status", {"challenge": ["c1"]}),
    (URLS.voice_amd("c1"), "POST", "twilio.voice_amd", {"challenge": ["c1"]}),
    (URLS.voice_keys("c1", 1), "POST", "twilio.voice_keys", {"challenge": ["c1"], "turn": ["1"], "ask": ["menu"]}),
    (URLS.voice_keys("c1", 1, "fraud", 2), "POST", "twilio.voice_keys",
     {"challenge": ["c1"], "turn": ["1"], "ask": ["fraud"], "repeats": ["2"]}),
    (URLS.voice_no_input("c1", 0), "POST", "twilio.voice_no_input",
     {"challenge": ["c1"], "turn": ["0"], "ask": ["menu"]}),
    (URLS.sms_status(), "POST", "twilio.sms_status", {}),
    (URLS.recorded_prompt("/voice-prompts/en-GB/0123456789ab/greeting.wav"), "GET",
     "voice_prompts.recorded_prompt", {}),
    # What earlier releases handed out: still routed, for calls in flight during an upgrade.
    (BASE + "/voice-prompts/en-GB/greeting.wav?v=0123456789ab", "GET",
     "voice_prompts.recorded_prompt_unversioned", {"v": ["0123456789ab"]}),
])
def test_every_url_handed_to_twilio_is_routed_to_its_view(app, url, method, endpoint, query):
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    matched, _ = app.url_map.bind(parts.netloc, url_scheme=parts.scheme).match(parts.path, method=method)
    assert matched == endpoint
    assert parse_qs(parts.query) == query


def test_a_recording_path_from_elsewhere_is_refused():
    with pytest.raises(ValueError):
        URLS.recorded_prompt("/twilio/voice/answer")
