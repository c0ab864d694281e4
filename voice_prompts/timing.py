"""How long a sequence of prompts takes to hear: from the recordings, or estimated for <Say>.

The first prompt of a call must say "press hash" within 4 s and end within 10 s (issue 11);
tests/test_voice_prompts.py checks both with these functions, for every language and mode.

A recording's length is its manifest duration (the file as played, with the ~150 ms of air
each side that audio.py keeps). Twilio's <Say> has no fixed rate: Amazon Polly documents that
"there is no standard speed (words per minute)" per voice, and suggests timing with speech marks
(https://docs.aws.amazon.com/polly/latest/dg/voice-speed-vip.html). The estimate is deliberately
slow instead: its own example, "Mary had a little lamb" (7 syllables), has its last sound start
1.08 s in, about 6 syllables a second; we assume 4.5 (a quarter slower), then add a pause for every
comma and every sentence end. To confirm with the real voices, time a call on Twilio.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from voice_prompts import catalogue
from voice_prompts.library import PromptLibrary

SAY_SYLLABLES_PER_SECOND = 4.5
# Pauses on top: Polly pauses at a comma and longer at a sentence end (its "medium" and "strong"
# breaks); their lengths are not documented, so these are allowances, not measurements.
SAY_PAUSE_SECONDS = {",": 0.1, ";": 0.1, ":": 0.1, ".": 0.25, "?": 0.25, "!": 0.25}

# Letters that make a syllable's nucleus; Welsh w and y are vowels too.
_VOWELS = {
    "en-GB": "aeiouy",
    "cy-GB": "aeiouwyâêîôûŵŷáéíóúẃýäëïöüẅÿ",
}
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def syllables(words: str, language: str) -> int:
    """A count of syllables from runs of vowel letters: good to a syllable or so a word.

    English drops a silent final e ("nine", "secure", not "little"); Welsh spells what it says.
    """
    language = catalogue.language_or_default(language)
    vowels = f"[{_VOWELS[language]}]+"
    total = 0
    for word in _WORD.findall(words.lower()):
        for part in word.split("'"):
            count = len(re.findall(vowels, part))
            if language == "en-GB" and count > 1 and re.search(r"[^aeiouy]e$", part) and not part.endswith("le"):
                count -= 1
            total += count or (1 if len(part) > 1 else 0)  # the "n" of "sy'n" is none; "hmm" is one
    return total


def say_seconds(words: str, language: str) -> float:
    """The estimated length of `words` spoken with <Say> (see the module's note on the rate)."""
    pauses = sum(SAY_PAUSE_SECONDS.get(mark, 0.0) for mark in re.findall(r"[,;:.?!](?=\s|$)", words.strip()))
    return syllables(words, language) / SAY_SYLLABLES_PER_SECOND + pauses


def sequence_seconds(names: Iterable[str], language: str, library: PromptLibrary | None = None,
                     service: str | None = None) -> float:
    """How long `names` take one after another: each recording's length when `library` has a fresh
    one, else the <Say> estimate of its catalogue text (all <Say> when `library` is None)."""
    total = 0.0
    for name in names:
        recording = library.recording(name, language) if library is not None else None
        if recording is not None:
            total += recording.duration
        else:
            spoken_service = library.service_for(language) if library is not None else service
            total += say_seconds(catalogue.text(name, language, spoken_service or catalogue.DEFAULT_SERVICE),
                                 language)
    return total
