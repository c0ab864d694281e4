"""A push to the person's phone app, approved there by typing the number the sign-in screen shows.

Nothing goes through the telephone provider: the request waits on the server for the device to
fetch it (and Web Push tells the device at once when configured). See mfa/push_approvals.py.
"""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from mfa.method_types.base import MethodType
from mfa.method_types.call import new_number_match

if TYPE_CHECKING:
    from models import Challenge, Method
    from mfa.services import Services


class PushApp(MethodType):
    name = "push"
    label = "Mobile app"
    sign_in_mode = "push"
    amr = "swk"  # a key held in the phone app, with the number on the screen matched
    challenge_ttl = timedelta(minutes=2)
    approved_on_device = True
    matches_numbers = True  # always

    def choice(self, method: Method) -> str:
        return f"Approve a request on my phone ({method.label})"

    def slot(self, method: Method) -> str:
        return f"{self.name}:{method.id}"  # a person may have several phones: none replaces another

    def new_challenge(self, svc: Services, challenge: Challenge) -> str | None:
        challenge.number_match = new_number_match()  # always: a push is never approved by a tap alone
        return None
