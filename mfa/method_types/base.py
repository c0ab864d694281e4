"""The hooks every method type fills: how it is described, challenged, checked and registered.

One subclass per type (app code, text, call, push), found through the registry in
`mfa/method_types/__init__.py`. Code elsewhere asks the type, never compares type names.
"""
from __future__ import annotations

from abc import ABC
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from mfa.errors import Unprocessable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models import Challenge, Method
    from mfa.phones import ParsedPhone
    from mfa.services import Services
    from mfa.telephony import Telephony

# What checking a typed code against one candidate found.
OK, WRONG_CODE, REPLAYED_CODE = "ok", "wrong_code", "replayed_code"


class MethodType(ABC):
    """Defaults describe a method that issues no challenge, takes no code and needs no phone."""

    name: ClassVar[str]  # stored in methods.type, challenges.type and send_records.type
    label: ClassVar[str]  # what people read: the type's name in pages and the audit trail
    sign_in_mode: ClassVar[str]  # what the browser's verify page shows for it
    # RFC 8176 method reference an Entra answer gives for it (docs/entra.md): how the person proved it.
    amr: ClassVar[str]

    # --- challenges ---
    challenge_ttl: ClassVar[timedelta | None] = None  # None: no challenge is issued
    ends_by_hanging_up: ClassVar[bool] = False  # a replaced or ended challenge is a call to hang up
    respects_do_not_call: ClassVar[bool] = False  # refused to numbers that asked not to be called
    approved_on_device: ClassVar[bool] = False  # answered on an enrolled phone app (mfa/push_approvals.py)
    # "call" or "text": placed through Twilio, which reports back on each one; one it never
    # reports on is a sign that its webhooks cannot reach us (mfa/unheard.py).
    twilio_sends_as: ClassVar[str | None] = None
    matches_numbers: ClassVar[bool] = False  # may ask for the two digits the sign-in screen shows

    # --- responses ---
    takes_code_without_challenge: ClassVar[bool] = False  # a typed code is checked against the method

    # --- registration ---
    phone_kinds: ClassVar[tuple[str, ...]] = ()  # the kinds of phone it can be registered with
    proves_number_ownership: ClassVar[bool] = False  # proving it lifts a do-not-call entry

    @property
    def issues_challenge(self) -> bool:
        return self.challenge_ttl is not None

    @property
    def is_phone_delivery(self) -> bool:
        return bool(self.phone_kinds)

    def choice(self, method: Method) -> str:
        """The words for choosing this method on the "sign in another way" page."""
        return method.label

    def slot(self, method: Method) -> str:
        """Methods in the same slot replace each other: one app, one phone of each kind."""
        return method.kind or self.name

    def new_challenge(self, svc: Services, challenge: Challenge) -> str | None:
        """Prepare a challenge row before it is sent; returns a secret to deliver (a text's code)."""
        return None

    def deliver(self, telephony: Telephony, number: str, challenge: Challenge, secret: str | None,
                language: str) -> str:
        """Send the challenge (no transaction is open); returns the provider's SID."""
        raise Unprocessable(f"Verification by {self.label.lower()} needs no challenge.",
                            code="no_challenge_needed")

    def check_code(self, db: Session, svc: Services, method: Method, challenge: Challenge | None,
                   code: str) -> str:
        """A typed code: OK, WRONG_CODE or REPLAYED_CODE (each use is a compare-and-set)."""
        return WRONG_CODE

    def check_phone(self, phone: ParsedPhone, kind: str) -> None:
        """Refuse a phone this type cannot reach (raises Unprocessable)."""
        if kind not in self.phone_kinds:
            raise Unprocessable(f"{self.label} cannot be used with this phone.", code="method_not_available")

    def accepts_phone(self, phone: ParsedPhone, kind: str) -> bool:
        try:
            self.check_phone(phone, kind)
        except Unprocessable:
            return False
        return True
