"""Draw the phone app's icons (an NHS-blue square with a white padlock, as favicon.svg) as PNGs.

Run once after a change (`.venv/bin/python web/phone/make_icons.py`); the PNGs are kept in the
repository. Pure Python: a 4x4 supersampled drawing in favicon.svg's 32-unit space, written by zlib.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLUE = (0x00, 0x5E, 0xB8)
WHITE = (0xFF, 0xFF, 0xFF)
SAMPLES = 4


def _in_rounded_rect(u: float, v: float, x0: float, y0: float, x1: float, y1: float, r: float) -> bool:
    if not (x0 <= u <= x1 and y0 <= v <= y1):
        return False
    cx = min(max(u, x0 + r), x1 - r)
    cy = min(max(v, y0 + r), y1 - r)
    return (u - cx) ** 2 + (v - cy) ** 2 <= r * r


def _padlock(u: float, v: float) -> tuple[int, int, int] | None:
    """White padlock with a blue keyhole, or None outside it (favicon.svg's shapes)."""
    if _in_rounded_rect(u, v, 8, 14, 24, 26, 1):
        return BLUE if 15 <= u <= 17 and 18 <= v <= 23 else WHITE
    distance = ((u - 16) ** 2 + (v - 14) ** 2) ** 0.5
    if v <= 14 and abs(distance - 5.75) <= 1.25:  # the shackle: the top half of a ring
        return WHITE
    return None


def _pixel(u: float, v: float, full_bleed: bool, scale: float) -> tuple[int, int, int, int]:
    if not full_bleed and not _in_rounded_rect(u, v, 0, 0, 32, 32, 6):
        return (0, 0, 0, 0)
    # Padlock drawn about its own middle (16, 16.5), `scale` times favicon size.
    colour = _padlock(16 + (u - 16) / scale, 16.5 + (v - 16.5) / scale) or BLUE
    return (*colour, 255)


def draw(size: int, full_bleed: bool, scale: float) -> bytes:
    rows = []
    step = 32 / size / SAMPLES
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            total = [0, 0, 0, 0]
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    u = (x * SAMPLES + sx + 0.5) * step
                    v = (y * SAMPLES + sy + 0.5) * step
                    r, g, b, a = _pixel(u, v, full_bleed, scale)
                    total[0] += r * a
                    total[1] += g * a
                    total[2] += b * a
                    total[3] += a
            alpha = total[3]
            if alpha:
                row += bytes([total[0] // alpha, total[1] // alpha, total[2] // alpha, alpha // SAMPLES ** 2])
            else:
                row += bytes(4)
        rows.append(bytes(row))
    return _png(size, b"".join(rows))


def _png(size: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


ICONS = {
    "icon-192.png": (192, False, 1.0),
    "icon-512.png": (512, False, 1.0),
    # Maskable: full bleed, the padlock inside the middle 80% circle that any mask keeps.
    "icon-maskable-512.png": (512, True, 0.9),
    # iOS fills transparency with black and rounds the corners itself: full bleed.
    "apple-touch-icon.png": (180, True, 1.0),
}

if __name__ == "__main__":
    for name, (size, full_bleed, scale) in ICONS.items():
        (HERE / name).write_bytes(draw(size, full_bleed, scale))
        print("wrote", HERE / name)
