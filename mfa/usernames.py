"""How a typed username is compared: one rule, used by accounts and the audit trail alike."""
from __future__ import annotations


def normalise_username(username: str) -> str:
    return username.strip().lower()
