"""Where calls and texts may go: toll fraud is the cost of calls and texts to numbers that pay
whoever runs them (satellite, international networks, premium rate, far-away mobiles).

Two rules, checked when a phone is registered and again before every call or text (a number
registered before TELEPHONY_ALLOWED_COUNTRIES changed must not be called):
- the number's country is one of `svc.allowed_countries` (TELEPHONY_ALLOWED_COUNTRIES);
- it is not in a high-cost range, whatever that setting says.
Premium-rate numbers are refused earlier still, when a number is typed (phones.NOT_DIRECT_DIAL).
docs/toll-fraud.md is the operators' account.
"""
from __future__ import annotations

import phonenumbers
from phonenumbers import geocoder

from mfa.errors import Unprocessable
from mfa.phones import UK, ParsedPhone
from mfa.services import Services

# Country calling codes refused whatever TELEPHONY_ALLOWED_COUNTRIES says: each call or text to
# them costs many times a UK one, and much of that goes to whoever holds the number.
HIGH_COST_CODES: dict[int, str] = {
    870: "Inmarsat satellite phones",
    881: "satellite phones",  # the Global Mobile Satellite System: Iridium, Globalstar, Thuraya…
    882: "international networks",
    883: "international networks",
    979: "international premium-rate numbers",
}
# Named as people say them; any other allowed country is named by phonenumbers.
NAMES = {UK: "the United Kingdom", "IM": "the Isle of Man", "JE": "Jersey", "GG": "Guernsey"}
CROWN_DEPENDENCIES = ("IM", "JE", "GG")


class DestinationNotAllowed(Unprocessable):
    code = "destination_not_allowed"
    message = "Calls and texts cannot go to that number."


def check(svc: Services, phone: ParsedPhone) -> None:
    """Raise DestinationNotAllowed (422) unless calls and texts may go to `phone`."""
    refused = refusal(svc, phone.parsed)
    if refused is not None:
        raise DestinationNotAllowed(refused)


def check_number(svc: Services, e164: str) -> None:
    """The same rules for a stored number (a registered method's, before it is called or texted)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        raise DestinationNotAllowed() from None
    refused = refusal(svc, parsed)
    if refused is not None:
        raise DestinationNotAllowed(refused)


COSTLY_TYPES = (phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST)


def refusal(svc: Services, parsed: phonenumbers.PhoneNumber) -> str | None:
    """The sentence for people when calls and texts may not go to `parsed`; None when they may."""
    high_cost = HIGH_COST_CODES.get(parsed.country_code or 0)
    if high_cost is not None:
        return (f"Calls and texts cannot go to {high_cost} (numbers starting +{parsed.country_code}): they cost "
                "too much. Give another number, or use the authenticator app.")
    if phonenumbers.number_type(parsed) in COSTLY_TYPES:  # refused when typed (phones.parse); and if stored
        return ("Calls and texts cannot go to premium-rate or shared-cost numbers: they cost too much. Give "
                "another number, or use the authenticator app.")
    if phonenumbers.region_code_for_number(parsed) not in svc.allowed_countries:
        return (f"Calls and texts go only to numbers in {allowed_places(svc)}. Give a number there, "
                "or use the authenticator app.")
    return None


def allowed_places(svc: Services) -> str:
    """'the United Kingdom, the Isle of Man, Jersey and Guernsey': the allowed countries for people."""
    codes = sorted(svc.allowed_countries, key=lambda c: (c != UK, c not in CROWN_DEPENDENCIES,
                                                         CROWN_DEPENDENCIES.index(c) if c in CROWN_DEPENDENCIES
                                                         else 0, country_name(c)))
    names = [country_name(c) for c in codes]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def country_name(code: str) -> str:
    if code in NAMES:
        return NAMES[code]
    example = phonenumbers.example_number(code)
    return (geocoder.country_name_for_number(example, "en") if example is not None else "") or code
