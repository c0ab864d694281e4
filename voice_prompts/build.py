"""Offline tooling: synthesise every prompt with espeak-ng, or import an operator's recording.

Run through the CLI (`flask --app app prompts build|import`, or `python -m voice_prompts.cli`).
Needs espeak-ng to build, and ffmpeg only to import formats other than WAV; the server needs neither.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from voice_prompts import catalogue, manifest
from voice_prompts.audio import PromptError, Prepared, prepare
from voice_prompts.library import AUDIO_DIR

__all__ = ["AUDIO_DIR", "PromptError", "build_all", "import_recording"]

# espeak-ng's own default rate. 150 (used before) dragged: the Welsh first prompt ran past 10 s.
# 175 is still within ordinary conversational speech (about 150-190 words a minute).
ESPEAK_WORDS_PER_MINUTE = 175
ESPEAK_TIMEOUT_SECONDS = 60
# Words espeak-ng mispronounces, given to it as phonemes ([[...]]); the manifest keeps the real
# text. Its Welsh voice reads "hash" as /has h/; a Welsh caller says /haʃ/ (docs/welsh-wording.md).
ESPEAK_SPOKEN_AS = {"cy-GB": {"hash": "[[h'aS]]"}}


def build_all(service: str = catalogue.DEFAULT_SERVICE, audio_dir: Path = AUDIO_DIR,
              languages=catalogue.LANGUAGES, names=catalogue.PROMPT_NAMES,
              replace_imported: bool = False, service_cy: str | None = None) -> list[manifest.Entry]:
    """Synthesise `names` × `languages` and record them in the manifest; returns every entry.

    An operator's imported recording that is still fresh is kept (returned with source
    "imported") unless `replace_imported`: a machine voice should not silently replace a person.
    Nothing is written unless every prompt builds and passes the limits.
    """
    _check_known(names, languages)
    audio_dir = Path(audio_dir)
    entries = _read_manifest(audio_dir)
    services = catalogue.service_names(service, service_cy)
    results, prepared = [], {}
    with tempfile.TemporaryDirectory(prefix="voice-prompts-") as scratch:
        for language in languages:
            for name in names:
                words = catalogue.text(name, language, services[language])
                current = entries.get((language, name))
                if (current and current.source == "imported" and current.text == words
                        and (audio_dir / current.relative_path).exists() and not replace_imported):
                    results.append(current)
                    continue
                raw = Path(scratch) / f"{language}-{name}.wav"
                _speak(espeak_spelling(words, language), catalogue.espeak_voice(language), raw)
                prepared[(language, name)] = (words, prepare(raw))
    for (language, name), (words, audio) in prepared.items():
        entry = _store(audio_dir, language, name, words, audio, "espeak-ng")
        entries[(language, name)] = entry
        results.append(entry)
    manifest.write(audio_dir, entries)
    return sorted(results, key=lambda e: (languages.index(e.language), names.index(e.name)))


def import_recording(name: str, language: str, source_path: Path, service: str = catalogue.DEFAULT_SERVICE,
                     audio_dir: Path = AUDIO_DIR, service_cy: str | None = None) -> manifest.Entry:
    """Convert an operator's recording of prompt `name` and record it as that prompt's audio.

    The manifest notes the catalogue text it stands for, so it stops playing (falls back to
    <Say>) if that text later changes, e.g. a new service name in the greeting.
    """
    _check_known([name], [language])
    audio_dir = Path(audio_dir)
    entries = _read_manifest(audio_dir)
    audio = prepare(Path(source_path))
    words = catalogue.text(name, language, catalogue.service_names(service, service_cy)[language])
    entry = _store(audio_dir, language, name, words, audio, "imported")
    entries[(language, name)] = entry
    manifest.write(audio_dir, entries)
    return entry


def _read_manifest(audio_dir: Path) -> dict[tuple[str, str], manifest.Entry]:
    try:
        return manifest.read(audio_dir)
    except ValueError as exc:
        raise PromptError(f"{exc}; fix or delete it, then run `prompts build`") from None


def _check_known(names, languages) -> None:
    for language in languages:
        if language not in catalogue.LANGUAGES:
            raise PromptError(f"unknown language {language!r}; known languages: {', '.join(catalogue.LANGUAGES)}")
    for name in names:
        if name not in catalogue.PROMPT_NAMES:
            raise PromptError(f"unknown prompt {name!r}; known prompts: {', '.join(catalogue.PROMPT_NAMES)}")


def espeak_spelling(words: str, language: str) -> str:
    for word, phonemes in ESPEAK_SPOKEN_AS.get(language, {}).items():
        words = re.sub(rf"\b{re.escape(word)}\b", phonemes, words, flags=re.IGNORECASE)
    return words


def _speak(words: str, voice: str, out: Path) -> None:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise PromptError("espeak-ng is not installed (apt-get install espeak-ng); "
                          "install it, or import recordings with `prompts import`")
    command = [espeak, "-v", voice, "-s", str(ESPEAK_WORDS_PER_MINUTE), "-w", str(out), words]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=ESPEAK_TIMEOUT_SECONDS)
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip().splitlines()[:1] or [f"exit {exc.returncode}"]
        raise PromptError(f"espeak-ng failed for voice {voice!r}: {reason[0]}") from None
    except subprocess.TimeoutExpired:
        raise PromptError(f"espeak-ng took over {ESPEAK_TIMEOUT_SECONDS} s for voice {voice!r}") from None


def _store(audio_dir: Path, language: str, name: str, words: str, audio: Prepared, source: str) -> manifest.Entry:
    entry = manifest.Entry(
        language=language,
        name=name,
        text=words,
        sha256=hashlib.sha256(audio.wav).hexdigest(),
        duration=audio.duration,
        size=len(audio.wav),
        source=source,
    )
    manifest.write_atomically(audio_dir / entry.relative_path, audio.wav)
    return entry
