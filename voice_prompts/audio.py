"""Turn any speech recording into a telephone prompt (offline only: imports pydub).

Twilio transcodes whatever it fetches to 8 kHz mono mu-law, so prompts are stored as 8 kHz
mono 16-bit PCM WAV: Twilio then has nothing to resample and the file sounds as tested.
"""
from __future__ import annotations

import audioop  # pydub's own resampler; standard library to 3.12, the audioop-lts package from 3.13
import io
import math
from dataclasses import dataclass
from pathlib import Path

from pydub import AudioSegment

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
MAX_SECONDS = 20.0
MAX_BYTES = 1024 * 1024
MAX_INPUT_BYTES = 50 * 1024 * 1024  # refuse before decoding: pydub holds the whole file in memory

KEEP_SILENCE_MS = 150  # a little air either side, so the first syllable is not clipped
SILENCE_BELOW_PEAK_DB = 40  # quieter than this (relative to the loudest moment) counts as silence
TARGET_RMS_DBFS = -16.0
PEAK_CEILING_DBFS = -1.0  # never raise the gain past this peak, so nothing clips

# Anti-alias filter before downsampling: pydub's set_frame_rate only interpolates, so speech
# energy above 4 kHz (espeak-ng writes 22 kHz audio) would fold back into the band as hiss.
LOW_PASS_HZ = 3600
LOW_PASS_TRANSITION_HZ = 800


class PromptError(Exception):
    """A prompt that cannot be built or imported; `message` is one line for the operator."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Prepared:
    wav: bytes  # the finished file
    duration: float  # seconds


def prepare(source: Path) -> Prepared:
    """Decode, trim, convert and normalise `source`; PromptError when it is not a usable prompt."""
    segment = _decode(Path(source))
    segment = segment.set_sample_width(SAMPLE_WIDTH).set_channels(1)
    segment = _trim_silence(segment, source)
    seconds = len(segment) / 1000
    if seconds > MAX_SECONDS:
        raise PromptError(f"{source} is {seconds:.1f} s long after trimming silence; "
                          f"a prompt must be at most {MAX_SECONDS:.0f} s")
    segment = _low_pass(segment).set_frame_rate(SAMPLE_RATE)
    segment = _normalise(segment)
    out = io.BytesIO()
    segment.export(out, format="wav")  # plain WAV is written by the wave module, no ffmpeg
    wav = out.getvalue()
    if len(wav) > MAX_BYTES:
        raise PromptError(f"{source} converts to {len(wav) / 1024:.0f} KB; a prompt must be under "
                          f"{MAX_BYTES // 1024} KB")
    return Prepared(wav=wav, duration=round(len(segment) / 1000, 3))


def _decode(source: Path) -> AudioSegment:
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise PromptError(f"cannot read {source}: {exc.strerror or exc}") from None
    if size > MAX_INPUT_BYTES:
        raise PromptError(f"{source} is {size / 1024 / 1024:.0f} MB; too large to be a prompt")
    try:
        # WAV is decoded in Python; other formats (MP3…) need ffmpeg, which pydub calls.
        # Opened here so it is closed: pydub leaves a file it opened itself unclosed.
        with source.open("rb") as audio:
            return AudioSegment.from_file(audio, format=source.suffix.lstrip(".").lower() or None)
    except Exception as exc:  # pydub raises many types (decode errors, ffmpeg missing, struct errors)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PromptError(f"{source} is not a readable audio file (WAV, or MP3 when ffmpeg is "
                          f"installed): {detail[:120]}") from None


def _trim_silence(segment: AudioSegment, source: Path) -> AudioSegment:
    if segment.max_dBFS == -math.inf:
        raise PromptError(f"{source} contains only silence")
    # Relative to the recording's own peak, so quiet and loud recordings trim alike.
    threshold = segment.max_dBFS - SILENCE_BELOW_PEAK_DB
    lead = _leading_silence_ms(segment, threshold)
    trail = _leading_silence_ms(segment.reverse(), threshold)
    start = max(0, lead - KEEP_SILENCE_MS)
    end = min(len(segment), len(segment) - trail + KEEP_SILENCE_MS)
    return segment[start:end]


def _leading_silence_ms(segment: AudioSegment, threshold: float, step_ms: int = 10) -> int:
    position = 0
    while position < len(segment) and segment[position:position + step_ms].dBFS < threshold:
        position += step_ms
    return min(position, len(segment))


def _low_pass(segment: AudioSegment) -> AudioSegment:
    """Windowed-sinc FIR (Hamming) on mono 16-bit audio, done with audioop so it runs in C."""
    rate = segment.frame_rate
    if rate <= SAMPLE_RATE:
        return segment
    taps = _low_pass_taps(LOW_PASS_HZ / rate, LOW_PASS_TRANSITION_HZ / rate)
    width = 4  # accumulate in 32 bits, scaled down 8 bits, so summing taps cannot clip
    samples = audioop.mul(audioop.lin2lin(segment.raw_data, SAMPLE_WIDTH, width), width, 1 / 256)
    half = len(taps) // 2
    padded = bytes(width * half) + samples + bytes(width * half)  # keeps the output aligned
    total = bytes(len(samples))
    for index, tap in enumerate(taps):
        shifted = padded[index * width:index * width + len(samples)]
        total = audioop.add(total, audioop.mul(shifted, width, tap), width)
    filtered = audioop.lin2lin(audioop.mul(total, width, 256), width, SAMPLE_WIDTH)
    return segment._spawn(filtered)


def _low_pass_taps(cutoff: float, transition: float) -> list[float]:
    """Taps for a cutoff and transition width given as fractions of the sample rate."""
    count = int(math.ceil(3.3 / transition)) | 1  # Hamming window: width ≈ 3.3 / taps; odd
    middle = count // 2
    taps = []
    for n in range(count):
        k = n - middle
        ideal = 2 * cutoff if k == 0 else math.sin(2 * math.pi * cutoff * k) / (math.pi * k)
        taps.append(ideal * (0.54 - 0.46 * math.cos(2 * math.pi * n / (count - 1))))
    gain = sum(taps)
    return [tap / gain for tap in taps]  # unity gain at 0 Hz


def _normalise(segment: AudioSegment) -> AudioSegment:
    """Bring speech to about -16 dBFS RMS, but never let the peak pass -1 dBFS."""
    gain = min(TARGET_RMS_DBFS - segment.dBFS, PEAK_CEILING_DBFS - segment.max_dBFS)
    return segment.apply_gain(gain)
