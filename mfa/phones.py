"""Phone number parsing and masking with `phonenumbers`."""
from __future__ import annotations

import re

import phonenumbers

from mfa.errors import Unprocessable

MASK = "\u2022"


def mask(e164: str) -> str:
    """'+447700900123' -> '+44 •••• ••0123': country code and last four digits only."""
    try:
        parsed = phonenumbers.parse(e164, None)
        shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        prefix = f"+{parsed.country_code}"
    except phonenumbers.NumberParseException:
        shown, prefix = e164, ""
    return prefix + mask_digits(shown[len(prefix):], keep=4)


def mask_digits(text: str, keep: int) -> str:
    """Every digit but the last `keep` becomes a bullet; spaces and signs stay."""
    total = sum(c.isdigit() for c in text)
    out, seen = [], 0
    for c in text:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - keep else MASK)
        else:
            out.append(c)
    return "".join(out)


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
    def is_only_mobile(self) -> bool:
        """Certainly a mobile (not a number plan where landlines and mobiles look alike)."""
        return self.type == phonenumbers.PhoneNumberType.MOBILE

    @property
    def is_uk(self) -> bool:
        return self.region == UK


# An extension, or pauses and tones dialled after answer: the call would reach a switchboard.
EXTENSION_MARKERS = re.compile(r"(?i)ext|[xw,;#*p]")
# Numbers that are not one person's direct line (or cost the caller dearly).
NOT_DIRECT_DIAL = {
    phonenumbers.PhoneNumberType.TOLL_FREE: "freephone (080) numbers",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate and business-rate (09, 0845, 0870) numbers",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost numbers",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal (070) numbers",
    phonenumbers.PhoneNumberType.UAN: "organisation-wide (03) numbers",
    phonenumbers.PhoneNumberType.PAGER: "pagers",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail access numbers",
}


def parse(number: object) -> ParsedPhone:
    """National UK input or E.164, one person's direct line; raises Unprocessable otherwise."""
    if not isinstance(number, str) or not number.strip() or len(number) > 40:
        raise Unprocessable("Enter a phone number, such as 07400 123456 or +44 7400 123456.",
                            code="invalid_number")
    if EXTENSION_MARKERS.search(number):
        raise Unprocessable(
            "Extensions cannot be used: verification calls cannot go through a switchboard. "
            "Give a number that rings the phone directly.", code="extension_not_allowed")
    try:
        parsed = phonenumbers.parse(number, UK)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise Unprocessable("That is not a valid phone number. Check it and try again.",
                            code="invalid_number")
    phone = ParsedPhone(parsed)
    if phone.type in NOT_DIRECT_DIAL:
        raise Unprocessable(
            f"That number cannot be used: {NOT_DIRECT_DIAL[phone.type]} do not ring one person's "
            "phone directly. Give a direct-dial number.", code="not_direct_dial")
    return phone
