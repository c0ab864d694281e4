"""Codes from an authenticator app (TOTP): nothing is sent; the code is checked against the method."""
from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import or_

from models import Method
from mfa import totp
from mfa.compare_and_set import compare_and_set
from mfa.method_types.base import OK, REPLAYED_CODE, WRONG_CODE, MethodType

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models import Challenge
    from mfa.services import Services


class AppCode(MethodType):
    name = "totp"
    label = "Authenticator app"
    sign_in_mode = "totp"
    amr = "otp"
    takes_code_without_challenge = True

    def choice(self, method: Method) -> str:
        return "Use a code from my authenticator app"

    def slot(self, method: Method) -> str:
        return self.name  # one app, whatever its kind

    def check_code(self, db: Session, svc: Services, method: Method, challenge: Challenge | None,
                   code: str) -> str:
        assert method.totp_secret_encrypted is not None  # every app method has one
        step = totp.matching_step(svc.vault.decrypt(method.totp_secret_encrypted), code, svc.clock.now())
        if step is None:
            return WRONG_CODE
        # Each time step is good once: the winner of this compare-and-set uses it.
        used = compare_and_set(db, method, where=[or_(Method.totp_last_step.is_(None), Method.totp_last_step < step)],
                               totp_last_step=step)
        return OK if used else REPLAYED_CODE
