"""One-time codes sent by text: random, short-lived, stored only as keyed hashes."""
from __future__ import annotations

import secrets

from mfa.vault import Vault

CODE_DIGITS = 6


def new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(vault: Vault, challenge_id: str, code: str) -> str:
    # Scoped by challenge: the same code in another challenge hashes differently.
    return vault.keyed_hash(f"{challenge_id}:{code}")
