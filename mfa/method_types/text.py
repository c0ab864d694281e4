"""A code sent by text message to a mobile phone, typed back within its lifetime."""
from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from models import Challenge
from models.states import ChallengeStatus
from mfa.codes import code_hash, new_code
from mfa.compare_and_set import compare_and_set
from mfa.errors import Unprocessable
from mfa.method_types.base import OK, REPLAYED_CODE, WRONG_CODE, MethodType

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models import Method
    from mfa.phones import ParsedPhone
    from mfa.services import Services
    from mfa.telephony import Telephony

# A texted code counts while its challenge is under way, or when nobody knows whether the
# text went out ("unknown": the provider may have sent it; if it arrives, it works).
TEXTED = (ChallengeStatus.PENDING, ChallengeStatus.UNKNOWN)


class Text(MethodType):
    name = "sms"
    label = "Text message"
    sign_in_mode = "sms"
    amr = "sms"
    challenge_ttl: ClassVar[timedelta] = timedelta(minutes=5)  # also what the text and the page say
    phone_kinds = ("mobile", "alternate")
    twilio_sends_as = "text"
    proves_number_ownership = True  # the owner read the code: calls to the number may resume

    @classmethod
    def code_lifetime_minutes(cls) -> int:
        """For the words of the text and the page ("it expires in 5 minutes")."""
        return int(cls.challenge_ttl.total_seconds() // 60)

    def choice(self, method: Method) -> str:
        return f"Text {method.label}"

    def new_challenge(self, svc: Services, challenge: Challenge) -> str:
        """A fresh code: its keyed hash is stored, the code itself only texted."""
        code = new_code()
        challenge.code_hash = code_hash(svc.vault, challenge.id, code)
        return code

    def deliver(self, telephony: Telephony, number: str, challenge: Challenge, secret: str | None,
                language: str) -> str:
        assert secret is not None  # new_challenge made one
        return telephony.send_code_sms(number, secret, language)

    def check_code(self, db: Session, svc: Services, method: Method, challenge: Challenge | None,
                   code: str) -> str:
        if challenge is None or not svc.vault.matches(f"{challenge.id}:{code}", challenge.code_hash):
            return WRONG_CODE  # see codes.code_hash
        used = compare_and_set(db, challenge, where=[Challenge.status.in_(TEXTED)], status=ChallengeStatus.APPROVED)
        return OK if used else REPLAYED_CODE

    def check_phone(self, phone: ParsedPhone, kind: str) -> None:
        if kind not in self.phone_kinds or not phone.is_mobile:
            raise Unprocessable("Text messages need a mobile number. Choose a call for this number instead.",
                                code="sms_needs_mobile")
