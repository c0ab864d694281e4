"""What the call says and in which voice: a first prompt short enough to time, the Welsh wording
review, and VOICE_PROMPTS choosing between <Play> (recordings) and <Say> (Twilio's Polly voices)."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app import create_app
from ivr import twiml
from ivr.call_flow import FIRST_PROMPT, SETTING_UP, Hangup, Listen, Redirect, Speak
from tests.test_voice_prompts import tone
from voice_prompts import catalogue, timing
from voice_prompts.build import import_recording
from voice_prompts.library import AUDIO_DIR, Playback, PromptLibrary, Recording

BASE = "https://mfa.example.org"
KEYS = f"{BASE}/twilio/voice/keys?challenge=c1&turn=0"
NO_INPUT = f"{BASE}/twilio/voice/no-input?challenge=c1&turn=0"
FIRST_CALL_TURN = [Listen(FIRST_PROMPT["hash"], KEYS), Redirect(NO_INPUT)]
TWILIO = {"TELEPHONY_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
          "TWILIO_FROM_NUMBER": "+441134960000"}


def spoken(xml: str) -> list[tuple[str, str]]:
    """(tag, voice or URL) of every <Say> and <Play>, in order."""
    return [(e.tag, e.get("voice") or (e.text or "")) for e in ET.fromstring(xml).iter() if e.tag in ("Say", "Play")]


# --- the first prompt: short, timed, and still saying what each key does -----------------------


@pytest.mark.parametrize("language", catalogue.LANGUAGES)
@pytest.mark.parametrize("mode", FIRST_PROMPT)
@pytest.mark.parametrize("source", ["recordings", "say"])
def test_the_first_prompt_asks_for_a_key_within_4_seconds_and_ends_within_10(language, mode, source):
    names = FIRST_PROMPT[mode]
    library = PromptLibrary() if source == "recordings" else None
    if library is not None:  # else the sum would quietly fall back to the <Say> estimate
        assert all(library.recording(name, language) for name in names), "run `prompts build`"
    # "Press hash" (or "enter the number") is heard by the end of the second prompt.
    assert timing.sequence_seconds(names[:2], language, library) <= 4.0
    assert timing.sequence_seconds(names, language, library) <= 10.0


@pytest.mark.parametrize("language", catalogue.LANGUAGES)
@pytest.mark.parametrize("mode", SETTING_UP)
def test_a_registration_call_sets_a_phone_up_within_10_seconds_and_never_says_sign_in(language, mode):
    names = SETTING_UP[mode]
    library = PromptLibrary()
    assert all(library.recording(name, language) for name in (*names, "setup_verified")), "run `prompts build`"
    assert timing.sequence_seconds(names[:2], language, library) <= 4.0
    assert timing.sequence_seconds(names, language, library) <= 10.0
    words = " ".join(catalogue.text(name, "en-GB") for name in (*SETTING_UP[mode], "setup_verified")).lower()
    assert "sign in" not in words and "sign-in" not in words.replace("secure sign-in", "")
    assert "report_fraud" not in names  # whoever did not ask for this call is a stranger: 9, wrong number


@pytest.mark.parametrize("language, zero, hash_, nine", [("en-GB", "zero", "hash", "nine"),
                                                          ("cy-GB", "sero", "hash", "naw")])
def test_the_first_prompt_names_the_service_the_fraud_keys_and_the_stranger_key(language, zero, hash_, nine):
    for mode, names in FIRST_PROMPT.items():
        words = " ".join(catalogue.text(name, language, "Acme Bank") for name in names).lower()
        assert "acme bank" in words, mode
        assert re.search(rf"\b{zero}\b[^.]*\b{hash_}\b", words), mode  # zero, then hash
        assert re.search(rf"\b{nine}\b", words), mode
    assert hash_ in catalogue.text("press_hash", language).lower()


def test_the_number_prompts_exist_in_both_languages():
    for name in ("enter_number", "confirm_fraud", "number_mismatch", "mismatch_goodbye"):
        assert name in catalogue.PROMPT_NAMES
        assert catalogue.text(name, "en-GB") != catalogue.text(name, "cy-GB")
    assert catalogue.text("confirm_fraud", "en-GB") == "To report that you did not try to sign in, press hash."


def test_welsh_prompts_follow_the_wording_review():
    welsh = " ".join(catalogue.text(name, "cy-GB") for name in catalogue.PROMPT_NAMES)
    assert "allwedd" not in welsh and "adrodd" not in welsh  # a lock's key; "recite"
    assert "ni wnaethoch chi bwyso unrhyw fysell" in catalogue.text("no_input", "cy-GB")
    assert "rhoi gwybod amdano" in catalogue.text("fraud_recorded", "cy-GB")
    assert catalogue.text("greeting", "cy-GB", "Acme") == "Helo, dyma Acme."


@pytest.mark.parametrize("words, language, count", [
    ("Hello from Secure Sign-in.", "en-GB", 7),
    ("If you did not try to sign in, press zero, then hash.", "en-GB", 13),
    ("Pwyswch hash i orffen.", "cy-GB", 6),
    ("Os nad oeddech chi'n disgwyl yr alwad hon, pwyswch naw.", "cy-GB", 14),
])
def test_syllables_are_counted_as_they_are_spoken(words, language, count):
    assert timing.syllables(words, language) == count


def test_the_say_estimate_is_slower_than_pollys_own_timed_example():
    # Amazon's "Timing a voice speed" page: the last sound of this starts 1.08 s in.
    assert timing.say_seconds("Mary had a little lamb.", "en-GB") > 1.08 * 1.15


# --- VOICE_PROMPTS: which recordings a call plays --------------------------------------------


def recording(source: str) -> Recording:
    return Recording("greeting", "en-GB", AUDIO_DIR / "en-GB" / "greeting.wav",
                     "/voice-prompts/en-GB/0123456789ab/greeting.wav", 1.0, source)


@pytest.mark.parametrize("mode, provider, plays_espeak, plays_imported", [
    ("say", "simulator", False, False),
    ("say", "twilio", False, False),
    ("recorded", "simulator", True, True),
    ("recorded", "twilio", True, True),
    ("auto", "simulator", True, True),
    ("auto", "twilio", False, True),  # real callers hear Polly, or the operator's own voice
])
def test_which_recordings_play_follows_voice_prompts(mode, provider, plays_espeak, plays_imported):
    playback = Playback(mode, provider)
    assert playback.plays(recording("espeak-ng")) is plays_espeak
    assert playback.plays(recording("imported")) is plays_imported
    assert playback.plays(None) is False


@pytest.mark.parametrize("setting, provider, heard", [
    ("say", {}, {("Say", "Polly.Amy-Neural")}),
    ("recorded", {}, {"Play"}),
    ("auto", {}, {"Play"}),
    ("auto", TWILIO, {("Say", "Polly.Amy-Neural")}),
    ("recorded", TWILIO, {"Play"}),
])
def test_the_say_or_play_choice_follows_the_voice_prompts_setting(app_config, setting, provider, heard):
    app = create_app({**app_config, **provider, "VOICE_PROMPTS": setting})
    try:
        xml = twiml.render(FIRST_CALL_TURN, "en-GB", app.extensions["mfa"].prompt_voice)
    finally:
        app.extensions["mfa"].engine.dispose()
    found = {tag if tag == "Play" else (tag, voice) for tag, voice in spoken(xml)}
    assert found == heard
    assert len(spoken(xml)) == len(FIRST_PROMPT["hash"])


def test_welsh_is_spoken_by_gwyneth_when_nothing_is_played():
    voice = twiml.PromptVoice(PromptLibrary(), catalogue, BASE, Playback("say"))
    xml = twiml.render([Speak("verified"), Hangup()], "cy-GB", voice)
    assert spoken(xml) == [("Say", "Polly.Gwyneth")]
    assert 'language="cy-GB"' in xml and "Mae eich mewngofnodi wedi'i ddilysu." in xml


def test_with_the_real_provider_an_imported_recording_plays_and_the_rest_is_said(tmp_path):
    audio_dir = Path(shutil.copytree(AUDIO_DIR, tmp_path / "audio"))
    entry = import_recording("greeting", "en-GB", tone(tmp_path / "mine.wav", 1.0), audio_dir=audio_dir)
    voice = twiml.PromptVoice(PromptLibrary(audio_dir), catalogue, BASE, Playback("auto", "twilio"))
    heard = spoken(twiml.render(FIRST_CALL_TURN, "en-GB", voice))
    assert heard[0] == ("Play", f"{BASE}/voice-prompts/en-GB/{entry.sha256[:12]}/greeting.wav")
    assert heard[1:] == [("Say", "Polly.Amy-Neural")] * 3


def test_the_welsh_prompts_speak_the_welsh_service_name(app_config):
    app = create_app({**app_config, "SERVICE_NAME_CY": "Mewngofnodi Diogel"})
    try:
        voice = app.extensions["mfa"].prompt_voice
        welsh = twiml.render([Speak("greeting"), Hangup()], "cy-GB", voice)
        english = twiml.render([Speak("greeting"), Hangup()], "en-GB", voice)
    finally:
        app.extensions["mfa"].engine.dispose()
    # The Welsh recording says the English name, so it is stale: <Say> speaks the Welsh one.
    assert spoken(welsh) == [("Say", "Polly.Gwyneth")] and "Helo, dyma Mewngofnodi Diogel." in welsh
    assert spoken(english)[0][0] == "Play"
