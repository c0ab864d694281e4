"""Recorded voice prompts: the committed audio, freshness, safe serving, import and build."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from pydub import AudioSegment
from pydub.generators import Sine

from voice_prompts import catalogue, manifest
from voice_prompts.build import PromptError, build_all, espeak_spelling, import_recording
from voice_prompts.cli import prompts_group
from voice_prompts.library import AUDIO_DIR, PromptLibrary

ROOT = Path(__file__).resolve().parents[1]
EVERY_PROMPT = [(language, name) for language in catalogue.LANGUAGES for name in catalogue.PROMPT_NAMES]
TOTAL = len(EVERY_PROMPT)
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed; building prompts needs it")


@pytest.fixture
def audio_dir(tmp_path):
    """A private copy of the committed recordings: tests never touch the real ones."""
    return Path(shutil.copytree(AUDIO_DIR, tmp_path / "audio"))


def tone(path: Path, seconds: float, rate: int = 44100, channels: int = 2, padding_ms: int = 0) -> Path:
    sound = Sine(440, sample_rate=rate).to_audio_segment(duration=seconds * 1000, volume=-12)
    silence = AudioSegment.silent(padding_ms, frame_rate=rate)
    # export() hands back the file it opened, still open: close it.
    (silence + sound + silence).set_channels(channels).export(path, format=path.suffix[1:]).close()
    return path


def wav_format(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes() / wav.getframerate()


# --- the catalogue ------------------------------------------------------------------------


def test_the_greeting_names_the_service_in_each_language():
    assert catalogue.text("greeting", "en-GB", "Acme Bank") == "Hello from Acme Bank."
    assert catalogue.text("greeting", "cy-GB", "Acme Bank") == "Helo, dyma Acme Bank."


def test_an_unknown_language_is_spoken_in_british_english():
    assert catalogue.text("verified", "fr-FR") == catalogue.text("verified", "en-GB")
    assert catalogue.text("verified", None) == "Your sign-in is verified. Goodbye."
    assert catalogue.say_voice("xx") == ("Polly.Amy-Neural", "en-GB")


def test_welsh_is_recognised_by_its_bare_language_tag():
    assert catalogue.text("goodbye", "cy") == "Mae'r alwad hon wedi dod i ben. Hwyl fawr."
    assert catalogue.say_voice("cy-GB") == ("Polly.Gwyneth", "cy-GB")  # Twilio has no neural Welsh voice


def test_an_unknown_prompt_name_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown prompt 'hello'"):
        catalogue.text("hello", "en-GB")


def test_a_service_name_with_braces_is_spoken_literally():
    assert catalogue.text("greeting", "en-GB", "{Acme}") == "Hello from {Acme}."


# --- the committed recordings -----------------------------------------------------------


@pytest.mark.parametrize("language, name", EVERY_PROMPT)
def test_every_prompt_has_a_fresh_8khz_mono_recording_within_limits(language, name):
    recording = PromptLibrary().recording(name, language)
    assert recording is not None, f"{language}/{name} has no fresh recording: run `prompts build`"
    rate, channels, width, seconds = wav_format(recording.path)
    assert (rate, channels, width) == (8000, 1, 2)
    assert seconds < 20 and recording.path.stat().st_size < 1024 * 1024
    assert recording.duration == pytest.approx(seconds, abs=0.01)


def test_a_recording_url_carries_its_hash_in_the_path_to_bust_twilios_cache():
    recording = PromptLibrary().recording("greeting", "cy-GB")
    assert recording is not None
    assert re.fullmatch(r"/voice-prompts/cy-GB/[0-9a-f]{12}/greeting\.wav", recording.url_path)
    version = recording.url_path.split("/")[3]
    assert hashlib.sha256(recording.path.read_bytes()).hexdigest().startswith(version)


def test_changing_the_service_name_makes_only_the_greeting_stale():
    library = PromptLibrary(service="Acme Bank")
    assert library.recording("greeting", "en-GB") is None
    assert library.recording("greeting", "cy-GB") is None
    assert library.stale() == [("en-GB", "greeting"), ("cy-GB", "greeting")]
    assert library.recording("press_hash", "en-GB") is not None


def test_an_unknown_language_plays_the_english_recording():
    library = PromptLibrary()
    assert library.recording("verified", "fr-FR") == library.recording("verified", "en-GB")


# --- the library at run time --------------------------------------------------------------


def test_the_manifest_is_read_once_when_the_library_is_made(audio_dir):
    library = PromptLibrary(audio_dir)
    (audio_dir / "manifest.json").unlink()
    assert library.recording("goodbye", "en-GB") is not None


def test_a_file_replaced_by_hand_is_not_played(audio_dir):
    shutil.copy(audio_dir / "en-GB" / "goodbye.wav", audio_dir / "en-GB" / "verified.wav")
    library = PromptLibrary(audio_dir)
    assert library.recording("verified", "en-GB") is None
    assert library.recording("goodbye", "en-GB") is not None


def test_a_broken_manifest_means_every_prompt_is_spoken_with_say(audio_dir):
    (audio_dir / "manifest.json").write_text("{not json")
    assert len(PromptLibrary(audio_dir).stale()) == len(EVERY_PROMPT)


def test_the_library_serves_a_known_recording():
    assert PromptLibrary().file_path("cy-GB", "greeting.wav") == AUDIO_DIR / "cy-GB" / "greeting.wav"


def test_the_library_serves_a_versioned_path_only_at_the_files_hash():
    library = PromptLibrary()
    recording = library.recording("greeting", "cy-GB")
    assert recording is not None
    version = recording.url_path.split("/")[3]
    assert library.versioned_audio("cy-GB", version, "greeting.wav") == recording.path.read_bytes()
    assert library.versioned_audio("cy-GB", "0" * 12, "greeting.wav") is None
    assert library.versioned_audio("en-GB", version, "greeting.wav") is None  # another file's hash


def test_a_file_replaced_while_serving_is_never_served_under_the_old_hash(tmp_path):
    """`prompts import` while the server runs (without the restart the docs ask for): the old hash's
    URL, cached for a year, still gets the bytes that hash names, never the new file."""
    audio_dir = tmp_path / "audio"
    shutil.copytree(AUDIO_DIR, audio_dir)
    library = PromptLibrary(audio_dir)
    recording = library.recording("greeting", "en-GB")
    assert recording is not None
    version, original = recording.url_path.split("/")[3], recording.path.read_bytes()
    (audio_dir / "en-GB" / "greeting.wav").write_bytes((audio_dir / "en-GB" / "goodbye.wav").read_bytes())
    served = library.versioned_audio("en-GB", version, "greeting.wav")
    assert served == original and hashlib.sha256(served).hexdigest().startswith(version)


def test_a_recording_is_served_immutable_at_its_hash_and_not_found_at_another(client):
    recording = PromptLibrary().recording("greeting", "en-GB")
    assert recording is not None
    response = client.get(recording.url_path)
    assert response.status_code == 200 and response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.get_data() == recording.path.read_bytes()
    response.close()
    version = recording.url_path.split("/")[3]
    assert client.get(recording.url_path.replace(version, "0" * 12)).status_code == 404


def test_the_old_query_string_url_still_plays_but_is_never_cached_as_immutable(client):
    response = client.get("/voice-prompts/en-GB/greeting.wav?v=0123456789ab")
    assert response.status_code == 200 and response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Cache-Control"] == "no-cache"  # its file changes when the prompt is rebuilt
    response.close()


@pytest.mark.parametrize("language, filename", [
    ("en-GB", "../manifest.json"),
    ("..", "manifest.json"),
    ("en-GB/../cy-GB", "greeting.wav"),
    ("en-GB", "..%2Fmanifest.json"),
    ("en-GB", "/etc/passwd"),
    ("en-GB", "hello.wav"),
    ("en-GB", "greeting.mp3"),
    ("en-gb", "greeting.wav"),
    ("fr-FR", "greeting.wav"),
    ("", ""),
])
def test_the_library_refuses_paths_outside_the_catalogue(language, filename):
    assert PromptLibrary().file_path(language, filename) is None


# --- importing an operator's recording ------------------------------------------------------


def test_an_imported_wav_is_trimmed_converted_and_recorded(audio_dir, tmp_path):
    source = tone(tmp_path / "mine.wav", 1.5, rate=44100, channels=2, padding_ms=1000)
    entry = import_recording("verified", "en-GB", source, audio_dir=audio_dir)

    rate, channels, width, seconds = wav_format(audio_dir / "en-GB" / "verified.wav")
    assert (rate, channels, width) == (8000, 1, 2)
    assert seconds == pytest.approx(1.5 + 2 * 0.15, abs=0.05)  # silence trimmed to ~150 ms a side
    recorded = json.loads((audio_dir / "manifest.json").read_text())["recordings"]["en-GB"]["verified"]
    assert recorded["source"] == "imported" == entry.source
    assert recorded["text"] == "Your sign-in is verified. Goodbye."
    recording = PromptLibrary(audio_dir).recording("verified", "en-GB")
    assert recording is not None and recording.url_path.endswith(f"/{entry.sha256[:12]}/verified.wav")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed; MP3 import needs it")
def test_an_imported_mp3_is_converted_when_ffmpeg_is_installed(audio_dir, tmp_path):
    source = tone(tmp_path / "mine.mp3", 1.0)
    import_recording("goodbye", "cy-GB", source, audio_dir=audio_dir)
    assert wav_format(audio_dir / "cy-GB" / "goodbye.wav")[:3] == (8000, 1, 2)


def test_a_file_that_is_not_audio_is_refused(audio_dir, tmp_path):
    source = tmp_path / "notes.wav"
    source.write_text("this is not audio")
    with pytest.raises(PromptError, match="is not a readable audio file"):
        import_recording("verified", "en-GB", source, audio_dir=audio_dir)


def test_a_recording_over_20_seconds_is_refused(audio_dir, tmp_path):
    source = tone(tmp_path / "long.wav", 25, rate=8000, channels=1)
    with pytest.raises(PromptError, match=r"is 25\.0 s long .* at most 20 s"):
        import_recording("verified", "en-GB", source, audio_dir=audio_dir)


def test_a_silent_recording_is_refused(audio_dir, tmp_path):
    source = tmp_path / "silence.wav"
    AudioSegment.silent(2000, frame_rate=8000).export(source, format="wav").close()
    with pytest.raises(PromptError, match="contains only silence"):
        import_recording("verified", "en-GB", source, audio_dir=audio_dir)


@pytest.mark.parametrize("name, language, message", [
    ("hello", "en-GB", "unknown prompt 'hello'"),
    ("verified", "fr-FR", "unknown language 'fr-FR'"),
])
def test_an_unknown_prompt_or_language_is_refused(audio_dir, tmp_path, name, language, message):
    source = tone(tmp_path / "mine.wav", 1.0)
    with pytest.raises(PromptError, match=message):
        import_recording(name, language, source, audio_dir=audio_dir)


def test_a_refused_import_leaves_the_recordings_untouched(audio_dir, tmp_path):
    before = (audio_dir / "manifest.json").read_bytes()
    source = tmp_path / "notes.wav"
    source.write_text("this is not audio")
    with pytest.raises(PromptError):
        import_recording("verified", "en-GB", source, audio_dir=audio_dir)
    assert (audio_dir / "manifest.json").read_bytes() == before


# --- building with espeak-ng ----------------------------------------------------------------


def test_espeak_is_told_how_welsh_says_hash_while_the_manifest_keeps_the_words():
    assert espeak_spelling("Pwyswch sero, yna hash.", "cy-GB") == "Pwyswch sero, yna [[h'aS]]."
    assert espeak_spelling("Press hash to finish.", "en-GB") == "Press hash to finish."
    entry = manifest.read(AUDIO_DIR)[("cy-GB", "press_hash")]
    assert entry.text == "Pwyswch hash i orffen."


@needs_espeak
def test_building_one_welsh_prompt_speaks_the_configured_service_name(tmp_path):
    [entry] = build_all("Acme Bank", tmp_path, languages=["cy-GB"], names=["greeting"])

    assert entry.text == "Helo, dyma Acme Bank." and entry.source == "espeak-ng"
    rate, channels, width, seconds = wav_format(tmp_path / "cy-GB" / "greeting.wav")
    assert (rate, channels, width) == (8000, 1, 2) and 0.5 < seconds < 20
    library = PromptLibrary(tmp_path, service="Acme Bank")
    assert library.recording("greeting", "cy-GB") is not None
    assert library.recording("greeting", "en-GB") is None


@needs_espeak
def test_building_keeps_an_operators_fresh_imported_recording(audio_dir, tmp_path):
    imported = import_recording("goodbye", "en-GB", tone(tmp_path / "mine.wav", 1.0), audio_dir=audio_dir)
    [kept] = build_all(audio_dir=audio_dir, languages=["en-GB"], names=["goodbye"])
    assert kept == imported
    [replaced] = build_all(audio_dir=audio_dir, languages=["en-GB"], names=["goodbye"], replace_imported=True)
    assert replaced.source == "espeak-ng"


# --- the command line -----------------------------------------------------------------------


def test_prompts_import_prints_one_line_per_file(audio_dir, tmp_path):
    source = tone(tmp_path / "mine.wav", 1.0)
    result = CliRunner().invoke(prompts_group,
                                ["import", "no_input", "cy-GB", str(source), "--audio-dir", str(audio_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("cy-GB/no_input.wav")


def test_prompts_import_fails_with_one_line_for_an_unknown_prompt(audio_dir, tmp_path):
    source = tone(tmp_path / "mine.wav", 1.0)
    result = CliRunner().invoke(prompts_group, ["import", "hello", "en-GB", str(source), "--audio-dir", str(audio_dir)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown prompt 'hello'") and result.output.count("\n") == 1


def test_prompts_status_lists_what_a_new_service_name_makes_stale(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "  Acme Bank ")  # the server's settings strip it too
    monkeypatch.delenv("VOICE_PROMPTS", raising=False)
    monkeypatch.delenv("TELEPHONY_PROVIDER", raising=False)
    result = CliRunner().invoke(prompts_group, ["status"])
    assert result.exit_code == 0, result.output
    assert ("en-GB/greeting: <Say> Polly.Amy-Neural, no fresh recording (Hello from Acme Bank.)"
            in result.output)
    assert f"{TOTAL - 2} of {TOTAL} prompts play a recording ({TOTAL - 2} recorded and fresh)" in result.output


def test_prompts_status_says_the_real_provider_hears_polly_unless_recordings_are_imported(monkeypatch, audio_dir,
                                                                                          tmp_path):
    import_recording("verified", "cy-GB", tone(tmp_path / "mine.wav", 1.0), audio_dir=audio_dir)
    monkeypatch.setenv("TELEPHONY_PROVIDER", "twilio")
    monkeypatch.delenv("VOICE_PROMPTS", raising=False)
    result = CliRunner().invoke(prompts_group, ["status", "--service", "Secure Sign-in", "--audio-dir", str(audio_dir)])
    assert result.exit_code == 0, result.output
    assert "cy-GB/verified: imported recording" in result.output
    assert ("en-GB/press_hash: <Say> Polly.Amy-Neural, VOICE_PROMPTS=auto with TELEPHONY_PROVIDER=twilio "
            "does not play espeak-ng recordings (Press hash to finish signing in.)") in result.output
    assert f"1 of {TOTAL} prompts play a recording ({TOTAL} recorded and fresh)" in result.output
    monkeypatch.setenv("VOICE_PROMPTS", "recorded")
    result = CliRunner().invoke(prompts_group, ["status", "--service", "Secure Sign-in", "--audio-dir", str(audio_dir)])
    assert f"{TOTAL} of {TOTAL} prompts play a recording" in result.output


def test_prompts_commands_run_under_flask_without_an_app_context():
    app = Flask(__name__)
    app.cli.add_command(prompts_group)
    result = app.test_cli_runner().invoke(args=["prompts", "status", "--service", "Secure Sign-in",
                                                "--voice-prompts", "recorded"])
    assert result.exit_code == 0, result.output
    assert f"{TOTAL} of {TOTAL} prompts play a recording ({TOTAL} recorded and fresh)" in result.output


def test_prompts_run_as_a_python_module():
    result = subprocess.run([sys.executable, "-m", "voice_prompts.cli", "status", "--service", "Secure Sign-in",
                             "--voice-prompts", "say"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"0 of {TOTAL} prompts play a recording ({TOTAL} recorded and fresh)" in result.stdout
