"""What domain functions need from outside, passed in as values (never Flask globals)."""
from __future__ import annotations

from dataclasses import dataclass

from mfa.clock import Clock
from mfa.passwords import Passwords
from mfa.policy import Policy
from mfa.telephony import Telephony
from mfa.vault import Vault


@dataclass(frozen=True)
class Services:
    clock: Clock
    vault: Vault
    policy: Policy
    service_name: str
    public_host: str  # for origin-bound SMS codes and the TOTP issuer
    passwords: Passwords
    telephony: Telephony  # ivr/provider.py; tests/fake_telephony.py in domain tests
