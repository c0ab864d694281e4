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


UK = "GB"
MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
ROAMING_NOTICE = (
    "This number is outside the UK: calls and texts may be delayed, and roaming or "
    "incoming charges may apply."
)


class ParsedPhone:
    """A number people typed, parsed once: E.164, type and country."""

    def __init__(self, parsed: phonenumbers.PhoneNumber):
        self.parsed = parsed
        self.e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        self.type = phonenumbers.number_type(parsed)
        self.region = phonenumbers.region_code_for_number(parsed)

    @property
    def label(self) -> str:
        return mask(self.e164)

    @property
    def is_mobile(self) -> bool:
        return self.type in MOBILE_TYPES

    @property
    def is_uk(self) -> bool:
        return self.region == UK


def parse(number) -> ParsedPhone:
    """National UK input or E.164; raises Unprocessable(invalid_number) when it is not a number."""
    from mfa.errors import Unprocessable

    if not isinstance(number, str) or not number.strip() or len(number) > 40:
        raise Unprocessable("Enter a phone number, such as 07700 900123 or +44 7700 900123.",
                            code="invalid_number")
    try:
        parsed = phonenumbers.parse(number, UK)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise Unprocessable("That is not a valid phone number. Check it and try again.",
                            code="invalid_number")
    return ParsedPhone(parsed)
