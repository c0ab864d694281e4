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
VERSION_LENGTH = 12  # hex digits of a recording's sha256 in its URL: a new file is a new path
WORDS_SUFFIX = ".txt"  # beside each recording, what it says (the dev phone shows it)
MODES = ("auto", "recorded", "say")  # VOICE_PROMPTS
SIMULATOR = "simulator"  # TELEPHONY_PROVIDER of the local stand-in

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recording:
    name: str
    language: str
    path: Path
    url_path: str  # e.g. /voice-prompts/en-GB/<sha256[:12]>/greeting.wav; join to PUBLIC_BASE_URL
    duration: float  # seconds
    source: str  # "espeak-ng" or "imported"


@dataclass(frozen=True)
class Playback:
    """Which fresh recordings a call plays (VOICE_PROMPTS), the rest being spoken with <Say>.

    `say`: none. `recorded`: every fresh one. `auto` (the default): an operator's imported
    recordings always, and the espeak-ng renditions only with the stand-in (TELEPHONY_PROVIDER=
    simulator), because a real caller should hear Twilio's Polly voice rather than a robotic one.
    """

    mode: str = "auto"
    provider: str = SIMULATOR

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"VOICE_PROMPTS must be one of {', '.join(MODES)}, not {self.mode!r}")

    def plays(self, recording: Recording | None) -> bool:
        if recording is None or self.mode == "say":
            return False
        return self.mode == "recorded" or recording.source == "imported" or self.provider == SIMULATOR


class PromptLibrary:
    def __init__(self, audio_dir: Path = AUDIO_DIR, service: str = catalogue.DEFAULT_SERVICE,
                 service_cy: str | None = None):
        self.audio_dir = Path(audio_dir).resolve()
        self.service = service
        self.services = catalogue.service_names(service, service_cy)  # the name each language speaks
        # (language, file name) -> (file, version, the bytes that version names)
        self._servable: dict[tuple[str, str], tuple[Path, str, bytes]] = {}
        self._fresh: dict[tuple[str, str], Recording] = {}
        self._words: dict[tuple[str, str], tuple[str, str]] = {}  # (language, file stem) -> (version, text)
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
        version = entry.sha256[:VERSION_LENGTH]
        self._servable[(entry.language, entry.filename)] = (path, version, data)
        self._words[(entry.language, Path(entry.filename).stem)] = (version, entry.text)
        if entry.text == catalogue.text(entry.name, entry.language, self.services[entry.language]):
            self._fresh[(entry.language, entry.name)] = Recording(
                name=entry.name,
                language=entry.language,
                path=path,
                # The content hash in the path, as Twilio's caching guidance asks (a new file name
                # or location; a query string is not named): served immutable at that path only.
                url_path=f"{URL_PREFIX}/{entry.language}/{version}/{entry.filename}",
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

    def to_play(self, name: str, language: str | None, playback: Playback) -> Recording | None:
        """The recording a call plays for prompt `name` under `playback`, or None: speak it with <Say>."""
        recording = self.recording(name, language)
        return recording if playback.plays(recording) else None

    def service_for(self, language: str | None) -> str:
        """The service name spoken in `language` (SERVICE_NAME_CY in Welsh when set)."""
        return self.services[catalogue.language_or_default(language)]

    def file_path(self, language: str, filename: str) -> Path | None:
        """The file to serve for /voice-prompts/<language>/<filename>, or None (answer 404).

        The unversioned path that URLs with `?v=<hash>` used before the hash moved into the
        path: kept so calls in flight during an upgrade still hear their prompt.
        Only exact catalogue languages and prompt file names listed in the manifest are served,
        so no request can reach any other file. Stale recordings are still served: a call that
        started before a restart with a new service name may yet fetch its greeting.
        """
        found = self._servable.get((language, filename))
        return found[0] if found else None

    def versioned_audio(self, language: str, version: str, filename: str) -> bytes | None:
        """The recording for /voice-prompts/<language>/<version>/<filename> when `version` is its hash,
        else None (answer 404). The bytes read and hashed at start-up, not the file now: a file
        replaced while the server runs must not be cached for ever under the old file's hash."""
        found = self._servable.get((language, filename))
        return found[2] if found and found[1] == version else None

    def words(self, language: str, version: str, filename: str) -> str | None:
        """What the recording at /voice-prompts/<language>/<version>/<name>.wav says, for
        /voice-prompts/<language>/<version>/<name>.txt; None (answer 404) for any other path."""
        if not filename.endswith(WORDS_SUFFIX):
            return None
        found = self._words.get((language, filename[:-len(WORDS_SUFFIX)]))
        return found[1] if found and found[0] == version else None

    def stale(self) -> list[tuple[str, str]]:
        """(language, name) of every catalogue prompt that will be spoken with <Say>."""
        return [(language, name) for language in catalogue.LANGUAGES for name in catalogue.PROMPT_NAMES
                if (language, name) not in self._fresh]
