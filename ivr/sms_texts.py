"""The words of every text message, per language. Each must fit one GSM-7 segment."""
from __future__ import annotations

from mfa.method_types import Text

CODE_TTL_MINUTES = Text.code_lifetime_minutes()  # the challenge's own lifetime: one constant

CODE_MESSAGE = {
    "en-GB": "Your {service} code is {code}. It expires in {minutes} minutes. Never share it.",
    "cy-GB": "Eich cod {service} yw {code}. Daw i ben mewn {minutes} munud. Cadwch ef yn gyfrinachol.",
}

# GSM 03.38 basic character set (plus the escape-free line feed): texts outside it cost
# UCS-2 segments of 70 characters instead of 160.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
SEGMENT = 160


def code_message(service: str, code: str, host: str, language: str) -> str:
    """The code text, ending with the origin-bound line browsers and phones autofill from."""
    template = CODE_MESSAGE.get(language, CODE_MESSAGE["en-GB"])
    text = template.format(service=service, code=code, minutes=CODE_TTL_MINUTES)
    return f"{text}\n\n@{host} #{code}"


def fits_one_gsm7_segment(body: str) -> bool:
    return len(body) <= SEGMENT and set(body) <= GSM7
