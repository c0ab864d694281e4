"""What domain functions need from outside, passed in as values (never Flask globals)."""
from __future__ import annotations

from dataclasses import dataclass, field

from mfa.clock import Clock
from mfa.limits import Limits
from mfa.passwords import Passwords
from mfa.policy import Policy
from mfa.push_delivery import NoPush, PushSender
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
    public_base_url: str = "http://127.0.0.1:5000"  # enrolment links for phones start with it
    push: PushSender = field(default_factory=NoPush)  # devices/webpush.py when VAPID keys are set
    limits: Limits = field(default_factory=Limits)  # mfa/limits.py: every number a limit enforces
    # TELEPHONY_ALLOWED_COUNTRIES: ISO 3166 codes calls and texts may go to (mfa/destinations.py)
    allowed_countries: frozenset[str] = frozenset({"GB", "IM", "JE", "GG"})
