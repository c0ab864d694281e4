"""Registering a phone by proving it answers: a texted code, or a call where `#` is pressed.

The phone is saved as a method straight away but stays unverified (unusable)
until its challenge succeeds; an unfinished attempt is cleared by the next.
"""
from __future__ import annotations

from dataclasses import dataclass

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import Authentication, Challenge, Method
from models.base import new_id
from models.method import PHONE_KINDS
from models.user import LANGUAGES
from models.states import ChallengeStatus
from mfa import destinations, phones, spend
from mfa.challenges import Reservation, reserve, send
from mfa.errors import BadRequest, NotPending, Unprocessable
from mfa.methods import require_registering
from mfa.method_types import method_type, phone_deliveries
from mfa.services import Services
from mfa.unit_of_work import Transactions

DELIVERIES = tuple(t.name for t in phone_deliveries())  # what the registration API accepts
IN_FLIGHT = timedelta(minutes=1)  # far longer than a provider request may take


@dataclass
class PhoneRegistration:
    challenge: Challenge
    notice: str | None


def register_phone(tx: Transactions, svc: Services, auth_id: object, number: object, kind: Any, delivery: Any,
                   source_ip: str | None, language: Any = None) -> PhoneRegistration:
    """`language` (optional) is the one calls to this person will speak: en-GB or cy-GB.

    Sends in steps (see mfa/challenges.py): the unverified method is saved with its
    challenge; the language and the clearing of earlier attempts wait until the text or
    call went out (or may have).
    """
    if language is not None and language not in LANGUAGES:
        raise BadRequest(f"'language' must be one of: {', '.join(LANGUAGES)}.", field="language")
    if kind not in PHONE_KINDS:
        raise BadRequest(f"'kind' must be one of: {', '.join(PHONE_KINDS)}.", field="kind")
    if delivery not in DELIVERIES:
        raise BadRequest(f"'delivery' must be one of: {', '.join(DELIVERIES)}.", field="delivery")
    parsed: list[phones.ParsedPhone] = []

    def reserve_step(db: Session) -> Reservation:
        auth = require_registering(db, svc, auth_id)
        phone = phones.parse(number)
        parsed.append(phone)
        destinations.check(svc, phone)  # nothing is saved or sent for a number calls may not go to
        check_phone_rules(phone, kind, delivery, auth.user.hybrid)
        method = Method(
            id=new_id(), user_id=auth.user_id, type=delivery, kind=kind, label=phone.label,
            phone_encrypted=svc.vault.encrypt(phone.e164), phone_lookup=svc.vault.keyed_hash(phone.e164),
            created_at=svc.clock.now(), is_default=False,
        )
        return reserve(db, svc, auth, method, "registration", source_ip)

    def after_sending(db: Session, r: Reservation) -> None:
        if language is not None:  # only once the call or text went out
            r.auth.user.language = language
        # Earlier unfinished attempts (and with them their codes) are now superseded; not one
        # whose text or call is going out right now (its own record step decides about it).
        in_flight = select(Challenge.method_id).where(
            Challenge.status == ChallengeStatus.SENDING, Challenge.created_at > svc.clock.now() - IN_FLIGHT)
        db.execute(delete(Method).where(
            Method.user_id == r.auth.user_id, Method.verified_at.is_(None),
            Method.phone_lookup.is_not(None), Method.id != r.method.id, Method.id.not_in(in_flight),
        ))
        db.expire(r.auth.user, ["methods"])

    challenge = send(tx, svc, reserve_step, after_sending)
    return PhoneRegistration(challenge, None if parsed[0].is_uk else phones.ROAMING_NOTICE)


def send_again(tx: Transactions, svc: Services, auth_id: object, method_id: object,
               source_ip: str | None) -> Challenge:
    """Text or call the phone being registered again ("Resend code", "Call me again").

    The same unverified phone, a new challenge (the older one is superseded); the spacing
    rules and caps count it like any other send.
    """
    def reserve_step(db: Session) -> Reservation:
        auth = require_registering(db, svc, auth_id)
        return reserve(db, svc, auth, _phone_being_registered(auth, method_id), "registration", source_ip)

    return send(tx, svc, reserve_step)


def _phone_being_registered(auth: Authentication, method_id: object) -> Method:
    found = next((m for m in auth.user.methods if m.id == method_id and m.verified_at is None
                  and m.phone_encrypted is not None), None)
    if found is None:  # replaced by a newer attempt, or verified meanwhile
        raise NotPending("This phone is no longer waiting to be verified. Choose how to verify again.",
                         code="not_pending")
    return found


def roaming_notice(number: object) -> str | None:
    """What to tell the person before texting or calling `number`: roaming and charges abroad.

    None for a UK number, and for one that does not parse (registering it says what is wrong).
    """
    try:
        phone = phones.parse(number)
    except Unprocessable:
        return None
    return None if phone.is_uk else phones.ROAMING_NOTICE


def phone_kinds_for(hybrid: bool) -> tuple[str, ...]:
    """The kinds of phone a person may register: a hybrid mailbox takes no office phone."""
    return tuple(kind for kind in PHONE_KINDS if not (hybrid and kind == "office"))


def phone_kinds_offered(db: Session, svc: Services, hybrid: bool) -> tuple[str, ...]:
    """The kinds of phone the registration pages offer now: none while the day's telephony budget
    is spent (mfa/spend.py), so that only the apps are offered."""
    return () if spend.telephony_paused(db, svc) else phone_kinds_for(hybrid)


def may_register_phone(kind: object, hybrid: bool) -> bool:
    return kind in phone_kinds_for(hybrid)


def delivery_for(kind: str, chosen: object) -> object:
    """The delivery a registration uses: the one chosen, unless only one suits this kind of phone."""
    suitable = [t.name for t in phone_deliveries() if kind in t.phone_kinds]
    return suitable[0] if len(suitable) == 1 else chosen


def check_phone_rules(phone: phones.ParsedPhone, kind: str, delivery: str, hybrid: bool) -> None:
    if not may_register_phone(kind, hybrid):
        raise Unprocessable(
            "Office phones cannot be used with a hybrid mailbox. Use a mobile phone or the app.",
            code="office_phone_not_allowed",
        )
    method_type(delivery).check_phone(phone, kind)
    if kind == "office" and phone.is_only_mobile:  # a desk phone: a mobile is the authentication phone
        raise Unprocessable(
            "That is a mobile number. Give your office phone's direct-dial number, or add this mobile "
            "as your authentication phone.", code="office_phone_is_mobile")
