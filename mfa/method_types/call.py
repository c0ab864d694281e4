"""A phone call answered with the hash key: its response comes through the call's webhooks (mfa/calls.py)."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from models.method import PHONE_KINDS
from mfa.method_types.base import MethodType

if TYPE_CHECKING:
    from models import Challenge, Method
    from mfa.telephony import Telephony


class Call(MethodType):
    name = "voice"
    label = "Phone call"
    sign_in_mode = "voice"
    challenge_ttl = timedelta(minutes=2)
    ends_by_hanging_up = True
    respects_do_not_call = True
    phone_kinds = PHONE_KINDS  # any phone that rings, office phones included

    def choice(self, method: Method) -> str:
        return f"Call {method.label}"

    def deliver(self, telephony: Telephony, number: str, challenge: Challenge, secret: str | None,
                language: str) -> str:
        return telephony.place_verification_call(number, challenge.id)
