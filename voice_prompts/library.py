"""The lookup the call flow uses: which prompts have a fresh recording, and where to fetch it.

Everything is read once when the library is built (at app start-up); a lookup afterwards
touches no disk and imports no audio code, so it is safe on the request path.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from voice_prompts import catalogue, manifest

AUDIO_DIR = Path(__file__).resolve().parent / "audio"
URL_PREFIX = "/voice-prompts"
MIMETYPE = "audio/wav"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recording:
    name: str
    language: str
    path: Path
    url_path: str  # e.g. /voice-prompts/en-GB/greeting.wav?v=<sha256[:12]>; join to PUBLIC_BASE_URL
    duration: float  # seconds
    source: str  # "espeak-ng" or "imported"


class PromptLibrary:
    def __init__(self, audio_dir: Path = AUDIO_DIR, service: str = catalogue.DEFAULT_SERVICE):
        self.audio_dir = Path(audio_dir).resolve()
        self.service = service
        self._servable: dict[tuple[str, str], Path] = {}  # (language, file name) -> file
        self._fresh: dict[tuple[str, str], Recording] = {}
        try:
            entries = manifest.read(self.audio_dir)
        except ValueError as exc:
            # A broken manifest must not stop calls: every prompt falls back to <Say>.
            log.warning("voice prompts: %s; speaking every prompt with <Say>", exc)
            entries = {}
        for entry in entries.values():
            self._load(entry)

    def _load(self, entry: manifest.Entry) -> None:
        if entry.language not in catalogue.LANGUAGES or entry.name not in catalogue.PROMPT_NAMES:
            return
        path = self.audio_dir / entry.relative_path
        try:
            data = path.read_bytes()
        except OSError:
            log.warning("voice prompts: %s is in the manifest but cannot be read", path)
            return
        # A file swapped by hand without the import command no longer matches its manifest
        # text or hash; playing it would say the wrong words under a stale cache key.
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            log.warning("voice prompts: %s does not match its manifest hash; not playing it", path)
            return
        self._servable[(entry.language, entry.filename)] = path
        if entry.text == catalogue.text(entry.name, entry.language, self.service):
            self._fresh[(entry.language, entry.name)] = Recording(
                name=entry.name,
                language=entry.language,
                path=path,
                url_path=f"{URL_PREFIX}/{entry.relative_path}?v={entry.sha256[:12]}",
                duration=entry.duration,
                source=entry.source,
            )

    def recording(self, name: str, language: str | None) -> Recording | None:
        """The fresh recording of prompt `name`, or None when the flow should use <Say>.

        The language falls back to en-GB like catalogue.text, so recording and <Say> text agree.
        An unknown name raises ValueError.
        """
        if name not in catalogue.PROMPT_NAMES:
            raise ValueError(f"unknown prompt {name!r}")
        return self._fresh.get((catalogue.language_or_default(language), name))

    def file_path(self, language: str, filename: str) -> Path | None:
        """The file to serve for /voice-prompts/<language>/<filename>, or None (answer 404).

        Only exact catalogue languages and prompt file names listed in the manifest are served,
        so no request can reach any other file. Stale recordings are still served: a call that
        started before a restart with a new service name may yet fetch its greeting.
        """
        return self._servable.get((language, filename))

    def stale(self) -> list[tuple[str, str]]:
        """(language, name) of every catalogue prompt that will be spoken with <Say>."""
        return [(language, name) for language in catalogue.LANGUAGES for name in catalogue.PROMPT_NAMES
                if (language, name) not in self._fresh]
