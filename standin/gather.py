"""The attributes of a <Gather>, with Twilio's defaults and its validity rules (NOTES.md 1.1)."""

from __future__ import annotations

from dataclasses import dataclass

FINISH_KEYS = set("0123456789#*")


class TwimlError(ValueError):
    """TwiML that Twilio would refuse; the call ends with an application error."""


def _positive_int(value: str, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise TwimlError(f"<Gather {what}={value!r}> is not an integer") from None
    if number < 1:
        raise TwimlError(f"<Gather {what}={value!r}> must be at least 1")
    return number


@dataclass(frozen=True)
class GatherRules:
    action: str  # already resolved against the current document
    method: str = "POST"
    timeout: int = 5  # inter-digit seconds
    finish_on_key: str = "#"  # "" means no key ends input
    num_digits: int | None = None  # None: unlimited
    action_on_empty_result: bool = False
    hears_dtmf: bool = True

    @classmethod
    def from_attributes(cls, attributes: dict[str, str], action: str) -> GatherRules:
        method = attributes.get("method", "POST").upper()
        if method not in ("GET", "POST"):
            raise TwimlError(f"<Gather method={method!r}> must be GET or POST")
        finish_on_key = attributes.get("finishOnKey", "#")
        if finish_on_key and finish_on_key not in FINISH_KEYS:
            raise TwimlError(f"13310 Invalid finishOnKey value {finish_on_key!r}")
        empty = attributes.get("actionOnEmptyResult", "false").lower()
        if empty not in ("true", "false"):
            raise TwimlError(f"13338 Invalid actionOnEmptyResult value {empty!r}")
        num_digits = attributes.get("numDigits")
        return cls(
            action=action,
            method=method,
            timeout=_positive_int(attributes.get("timeout", "5"), "timeout"),
            finish_on_key=finish_on_key,
            num_digits=_positive_int(num_digits, "numDigits") if num_digits else None,
            action_on_empty_result=empty == "true",
            hears_dtmf="dtmf" in attributes.get("input", "dtmf").lower().split(),
        )
