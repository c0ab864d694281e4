"""A phone call answered with the hash key, or with the number shown on the sign-in screen
(CALL_APPROVAL=number): its response comes through the call's webhooks (mfa/calls.py)."""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from models.method import PHONE_KINDS
from mfa.method_types.base import MethodType
from mfa.policy import NUMBER

if TYPE_CHECKING:
    from models import Challenge, Method
    from mfa.services import Services
    from mfa.telephony import Telephony


def new_number_match() -> str:
    """Two digits, the first 1-8: 0 and 9 keep their meaning (report fraud, do not call)."""
    return f"{secrets.randbelow(8) + 1}{secrets.randbelow(10)}"


class Call(MethodType):
    name = "voice"
    label = "Phone call"
    sign_in_mode = "voice"
    amr = "tel"
    challenge_ttl = timedelta(minutes=2)
    ends_by_hanging_up = True
    respects_do_not_call = True
    twilio_sends_as = "call"
    matches_numbers = True  # in number mode (CALL_APPROVAL=number)
    phone_kinds = PHONE_KINDS  # any phone that rings, office phones included

    def choice(self, method: Method) -> str:
        return f"Call {method.label}"

    def new_challenge(self, svc: Services, challenge: Challenge) -> str | None:
        """In number mode, the digits the sign-in screen shows and the caller keys (sign-in and
        registration calls alike); nothing to send: the call never says them."""
        if svc.policy.call_approval_for(challenge.authentication.user) == NUMBER:
            challenge.number_match = new_number_match()
        return None

    def deliver(self, telephony: Telephony, number: str, challenge: Challenge, secret: str | None,
                language: str) -> str:
        return telephony.place_verification_call(number, challenge.id)
