"""How long the callee spends hearing a prompt: the stand-in reports the time it simulates.

<Say> is timed from its words at a steady speaking rate; <Play> from the audio the app serves
(a WAV header gives its exact length); anything else falls back to an estimate.
"""

from __future__ import annotations

import struct

SAY_SECONDS_PER_WORD = 0.4  # 150 words a minute, the usual text-to-speech pace
PLAY_FALLBACK_SECONDS = 3.0  # a <Play> whose length cannot be read (MP3, unreachable...)
PLAY_DIGIT_SECONDS = 0.5  # <Play digits>: a tone, or a 'w' pause, each about half a second


def say_seconds(text: str) -> float:
    return SAY_SECONDS_PER_WORD * len(text.split())


def wav_seconds(audio: bytes) -> float | None:
    """Seconds of sound in a RIFF/WAVE file (any codec with a byte rate), else None.

    Reads the `fmt ` chunk's byte rate and the `data` chunk's size, capped at the bytes really
    served, so a truncated file is as short as what Twilio could actually play."""
    if len(audio) < 12 or audio[8:12] != b"WAVE" or audio[:4] not in (b"RIFF", b"RIFX"):
        return None
    order = "<" if audio[:4] == b"RIFF" else ">"
    byte_rate = 0
    position = 12
    while position + 8 <= len(audio):
        chunk, size = audio[position:position + 4], struct.unpack(
            order + "I", audio[position + 4:position + 8])[0]
        body = position + 8
        if chunk == b"fmt " and size >= 16 and body + 12 <= len(audio):
            byte_rate = struct.unpack(order + "I", audio[body + 8:body + 12])[0]
        elif chunk == b"data":
            return min(size, len(audio) - body) / byte_rate if byte_rate else None
        position = body + size + (size & 1)  # chunks are padded to an even length
    return None
