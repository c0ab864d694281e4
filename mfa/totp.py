"""Authenticator-app codes (RFC 6238: SHA1, 6 digits, 30 s) with pyotp."""
from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

STEP_SECONDS = 30
DIGITS = 6
# Accept the previous and next step too: phones' clocks drift.
WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code equals `code`, within the window; None when none does."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            found = step
    return found
