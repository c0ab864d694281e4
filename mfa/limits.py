"""Every limit the service enforces, in one catalogue: what it counts, per what, its window, its number.

The catalogue is the single source for the settings (each number is a setting), for
`GET /api/v1/limits`, for docs/limits.md and for the code that enforces each limit:
enforcement reads `svc.limits.number(NAME)` and `window(NAME)`, never a constant of its own.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

# What a limit is counted per (the JSON's `per`).
API_KEY = "api_key"
SOURCE_ADDRESS = "source_address"
PERSON = "person"
PERSON_AND_ADDRESS = "person_and_source_address"
PHONE_NUMBER = "phone_number"
NUMBER_RANGE = "phone_number_range"
SIGN_IN = "sign_in"
DEVICE = "device"
SERVICE = "service"

MINUTE = 60
HOUR = 3600
DAY = 86400


@dataclass(frozen=True)
class Limit:
    name: str
    setting: str  # the environment variable that sets `number`
    counts: str  # what is counted, for people
    per: str
    window_seconds: int
    default: int
    # Refused with: "rate_limited" (429), or what the limit does instead (a lockout, a pause).
    effect: str = "rate_limited"
    # The setting sets the window (seconds) rather than the number: "one per N seconds".
    setting_is_window: bool = False
    maximum: int = 10_000_000  # the highest the setting may be (start-up refuses more)


# Names used by the code that enforces them.
API_REQUESTS = "api_requests"
API_SIGN_INS = "api_sign_ins"
API_APP_PASSWORD_CHECKS = "api_app_password_checks"
SIGN_INS_PER_PERSON_AND_ADDRESS = "sign_ins_per_person_and_address"
PAGE_SIGN_INS = "page_sign_ins"
PAGE_FORMS = "page_forms"
DEVICE_REQUESTS = "device_requests"
SENDS_PER_SIGN_IN = "sends_per_sign_in"
RESEND_WAIT = "resend_wait"
SENDS_PER_PERSON = "sends_per_person"
SENDS_PER_NUMBER = "sends_per_number"
SENDS_PER_NUMBER_DAY = "sends_per_number_day"
UNANSWERED_CALLS_PER_NUMBER = "unanswered_calls_per_number"
NEW_NUMBERS_PER_RANGE = "new_numbers_per_range"
TELEPHONY_BUDGET = "telephony_daily_budget"
CODE_ATTEMPTS = "code_attempts_per_sign_in"
LOCKOUT_THRESHOLD = "lockout_threshold"
APP_PASSWORD_LOCKOUT_THRESHOLD = "app_password_lockout_threshold"
PUSH_REQUESTS = "push_requests"
PUSH_REQUESTS_PER_HOUR = "push_requests_per_hour"
PUSH_DENIALS = "push_denials_before_pause"
NOTICES_PER_PERSON = "change_notices_per_person"

CATALOGUE: tuple[Limit, ...] = (
    Limit(API_REQUESTS, "RATE_LIMIT_API_REQUESTS", "requests to /api/v1 by one API key", API_KEY, MINUTE, 600),
    Limit(API_SIGN_INS, "RATE_LIMIT_API_SIGN_INS", "failed password checks (POST /api/v1/authentications "
          "answered 401 or 423) by one API key", API_KEY, MINUTE, 300),
    Limit(API_APP_PASSWORD_CHECKS, "RATE_LIMIT_APP_PASSWORD_CHECKS",
          "app-password checks (POST /api/v1/app-passwords/verify) by one API key", API_KEY, MINUTE, 120),
    Limit(SIGN_INS_PER_PERSON_AND_ADDRESS, "RATE_LIMIT_SIGN_INS_PER_PERSON",
          "failed passwords naming one username from one source address (sign-ins by API and page together; "
          "app-password checks not counted)", PERSON_AND_ADDRESS, MINUTE, 20),
    Limit(PAGE_SIGN_INS, "RATE_LIMIT_PAGE_SIGN_INS", "failed sign-in form posts (answered 401 or 423) from one "
          "source address", SOURCE_ADDRESS, MINUTE, 60),
    Limit(PAGE_FORMS, "RATE_LIMIT_PAGE_FORMS", "form posts to the pages from one source address",
          SOURCE_ADDRESS, MINUTE, 120),
    Limit(DEVICE_REQUESTS, "RATE_LIMIT_DEVICE_REQUESTS", "requests to the phone app's API (/device/v1) from one "
          "source address", SOURCE_ADDRESS, MINUTE, 120),
    Limit(SENDS_PER_SIGN_IN, "LIMIT_SENDS_PER_SIGN_IN", "texts and calls for one sign-in", SIGN_IN, 600, 5),
    Limit(RESEND_WAIT, "LIMIT_RESEND_WAIT_SECONDS", "texts and calls for one sign-in within the window (the "
          "setting is the window in seconds)", SIGN_IN, 30, 1, setting_is_window=True),
    Limit(SENDS_PER_PERSON, "LIMIT_SENDS_PER_PERSON", "texts and calls to one person", PERSON, HOUR, 15),
    Limit(SENDS_PER_NUMBER, "LIMIT_SENDS_PER_NUMBER", "texts and calls to one phone number", PHONE_NUMBER, HOUR, 10),
    Limit(SENDS_PER_NUMBER_DAY, "TELEPHONY_NUMBER_DAILY_CAP", "texts and calls to one phone number in a day",
          PHONE_NUMBER, DAY, 20),
    Limit(UNANSWERED_CALLS_PER_NUMBER, "LIMIT_UNANSWERED_CALLS", "calls to one number nobody answered in a day: "
          "then no more calls to it that day", PHONE_NUMBER, DAY, 3),
    Limit(NEW_NUMBERS_PER_RANGE, "LIMIT_NEW_NUMBERS_PER_RANGE", "different numbers texted or called in one "
          "number range (all but the last three digits) in an hour", NUMBER_RANGE, HOUR, 5),
    Limit(TELEPHONY_BUDGET, "TELEPHONY_DAILY_BUDGET", "texts and calls the whole service places in a day (UTC): "
          "then only app methods", SERVICE, DAY, 2000, effect="telephony_off"),
    Limit(CODE_ATTEMPTS, "LIMIT_CODE_ATTEMPTS", "wrong codes for one sign-in (a new code does not reset it)",
          SIGN_IN, 600, 5, effect="too_many_attempts"),
    Limit(LOCKOUT_THRESHOLD, "LOCKOUT_THRESHOLD", "consecutive failed passwords and codes before a lockout, "
          "familiar and unfamiliar sources counted apart", PERSON, 0, 10, effect="locked",
          maximum=33),  # mfa/lockout.py: three counters of at most 32 stay under 100 failures (63B-4 §3.2.2)
    Limit(APP_PASSWORD_LOCKOUT_THRESHOLD, "APP_PASSWORD_LOCKOUT_THRESHOLD", "consecutive failed app-password "
          "checks before an app-password lock is audited (right ones still work; sign-ins are not locked)", PERSON, 0,
          20, effect="audited",
          maximum=33),
    Limit(PUSH_REQUESTS, "LIMIT_PUSH_REQUESTS", "sign-in requests pushed to one person's phones", PERSON, 300, 3),
    Limit(PUSH_REQUESTS_PER_HOUR, "LIMIT_PUSH_REQUESTS_PER_HOUR", "sign-in requests pushed to one person's phones",
          PERSON, HOUR, 10),
    Limit(PUSH_DENIALS, "LIMIT_PUSH_DENIALS", "denials in a row (Deny or a wrong number) before push pauses for "
          "the window", PERSON, 900, 2, effect="push_paused"),
    Limit(NOTICES_PER_PERSON, "LIMIT_CHANGE_NOTICES", "changes to one person's sign-in methods texted to their "
          "phones in an hour (more are audited, not texted)", PERSON, HOUR, 5, effect="not_texted"),
)
BY_NAME = {limit.name: limit for limit in CATALOGUE}
SETTINGS = {limit.setting: limit for limit in CATALOGUE}


@dataclass(frozen=True)
class Limits:
    """The numbers in force: the catalogue's defaults, overridden by settings."""

    numbers: dict[str, int] = field(default_factory=dict)

    def number(self, name: str) -> int:
        limit = BY_NAME[name]
        return limit.default if limit.setting_is_window else self.numbers.get(name, limit.default)

    def window_seconds(self, name: str) -> int:
        limit = BY_NAME[name]
        return self.numbers.get(name, limit.window_seconds) if limit.setting_is_window else limit.window_seconds

    def window(self, name: str) -> timedelta:
        return timedelta(seconds=self.window_seconds(name))

    def flask_limit(self, name: str) -> str:
        """The limit as Flask-Limiter writes it, e.g. '120 per 60 seconds'."""
        return f"{self.number(name)} per {self.window_seconds(name)} seconds"

    def published(self) -> list[dict[str, object]]:
        """GET /api/v1/limits: one entry per limit."""
        return [{"name": limit.name, "counts": limit.counts, "per": limit.per,
                 "window_seconds": self.window_seconds(limit.name), "limit": self.number(limit.name),
                 "effect": limit.effect, "setting": limit.setting} for limit in CATALOGUE]


def parse(environ_get: Callable[[str], str | None]) -> Limits:
    """Each limit's setting, a whole number from 1; ValueError names the first malformed one."""
    numbers = {}
    for limit in CATALOGUE:
        raw = environ_get(limit.setting)
        if raw is None:
            continue
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= limit.maximum:  # not '²', which isdigit
            default = limit.window_seconds if limit.setting_is_window else limit.default
            raise ValueError(f"{limit.setting} must be a whole number from 1 to {limit.maximum} (default {default}).")
        numbers[limit.name] = int(raw)
    return Limits(numbers)
