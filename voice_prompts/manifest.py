"""The manifest beside the recordings: what each file says, its hash, length and origin.

A recording is only played while its manifest text equals the catalogue text for the
current service name, so the manifest is what makes a stale recording detectable.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST_NAME = "manifest.json"
FORMAT = 1
SOURCES = ("espeak-ng", "imported")


@dataclass(frozen=True)
class Entry:
    language: str
    name: str
    text: str  # the exact words spoken, service name filled in
    sha256: str  # of the WAV file; its first 12 hex digits bust Twilio's audio cache
    duration: float  # seconds
    size: int  # bytes
    source: str  # one of SOURCES

    @property
    def filename(self) -> str:
        return recording_filename(self.name)

    @property
    def relative_path(self) -> str:
        return f"{self.language}/{self.filename}"


def recording_filename(name: str) -> str:
    return f"{name}.wav"


def read(audio_dir: Path) -> dict[tuple[str, str], Entry]:
    """Entries keyed by (language, name); an absent manifest means no recordings.

    A manifest that cannot be parsed raises ValueError: the caller decides whether that is fatal.
    """
    path = Path(audio_dir) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = {}
        for language, prompts in document["recordings"].items():
            for name, fields in prompts.items():
                entries[(language, name)] = Entry(language=language, name=name, **fields)
        return entries
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a valid prompt manifest: {exc}") from None


def write(audio_dir: Path, entries: dict[tuple[str, str], Entry]) -> None:
    """Replace the manifest atomically, sorted so a rebuild with no changes leaves no diff."""
    recordings: dict[str, dict[str, dict]] = {}
    for (language, name), entry in sorted(entries.items()):
        fields = asdict(entry)
        del fields["language"], fields["name"]
        recordings.setdefault(language, {})[name] = fields
    document = {"format": FORMAT, "recordings": recordings}
    write_atomically(Path(audio_dir) / MANIFEST_NAME,
                     (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target then rename, so no reader ever sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; the server may run as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
