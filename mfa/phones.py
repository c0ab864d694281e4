"""Phone number parsing and masking with `phonenumbers`."""
from __future__ import annotations

import phonenumbers

MASK = "\u2022"


def mask(e164: str) -> str:
    """'+447700900123' -> '+44 •••• ••0123': country code and last four digits only."""
    try:
        parsed = phonenumbers.parse(e164, None)
        shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        prefix = f"+{parsed.country_code}"
    except phonenumbers.NumberParseException:
        shown, prefix = e164, ""
    body = shown[len(prefix):]
    digits_seen = sum(c.isdigit() for c in body)
    out, index = [], 0
    for c in body:
        if c.isdigit():
            index += 1
            out.append(c if index > digits_seen - 4 else MASK)
        else:
            out.append(c)
    return prefix + "".join(out)
