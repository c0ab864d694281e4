"""A person's methods: enrolling, activating after proof, choosing the default."""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import Authentication, DoNotCall, Method, User
from models.base import is_id
from models.states import AuthStatus
from mfa import audit, change_notices, phones, spend, totp
from mfa.authentications import can_continue, get, set_status
from mfa.errors import NotPending, Unprocessable
from mfa.locks import lock_person
from mfa.method_types import AppCode, method_type, offered, phone_deliveries
from mfa.queries import on_do_not_call_list
from mfa.services import Services
from mfa.vault import phone_lookup_matches


def register_totp(db: Session, svc: Services, auth_id: object, source_ip: str | None) -> tuple[Method, str]:
    """Start enrolling an authenticator app; a following valid code activates it."""
    auth = require_registering(db, svc, auth_id)
    set_status(db, svc, auth, AuthStatus.REGISTRATION_REQUIRED)
    return enrol_totp(db, svc, auth.user, source_ip)


def require_registering(db: Session, svc: Services, auth_id: object) -> Authentication:
    auth = get(db, svc, auth_id)
    if not (auth.registering and can_continue(auth, svc.clock.now())):
        raise NotPending("Registration is only possible while the sign-in asks for it.")
    if auth.purpose == "sign_in" and auth.user.verified_methods():
        # Registered meanwhile (another sign-in): changes now go through security info.
        raise NotPending("This person has registered already. Sign in again to use the new method.")
    return auth


def registered_meanwhile(db: Session, auth: Authentication) -> bool:
    """True when a first-registration sign-in may no longer finish: the person has a verified method.

    Checked when the sign-in is approved, not only when it started: otherwise someone who knows
    only the password could open a registration sign-in before the person registers and finish
    it afterwards, adding their own authenticator. The person is locked first, so of two first
    registrations finishing at once only one sees no method.
    """
    if not (auth.registering and auth.purpose == "sign_in"):
        return False
    lock_person(db, auth.user_id)
    return db.scalar(select(Method.id).where(
        Method.user_id == auth.user_id, Method.verified_at.is_not(None)).limit(1)) is not None


def enrol_totp(db: Session, svc: Services, user: User, source_ip: str | None) -> tuple[Method, str]:
    # An enrolment never finished is useless: forget it rather than pile them up.
    db.execute(
        delete(Method).where(
            Method.user_id == user.id, Method.type == AppCode.name, Method.verified_at.is_(None)
        )
    )
    db.expire(user, ["methods"])
    secret = totp.new_secret()
    method = Method(
        user_id=user.id, type=AppCode.name, label=AppCode.label, created_at=svc.clock.now(),
        totp_secret_encrypted=svc.vault.encrypt(secret), is_default=False,
    )
    db.add(method)
    db.flush()
    db.expire(user, ["methods"])
    audit.record(db, svc.clock, "method_enrolment_started", "pending", user=user,
                 method=AppCode.label, source_ip=source_ip)
    return method, totp.provisioning_uri(secret, user.username, svc.service_name)


def activate(db: Session, svc: Services, method: Method, source_ip: str | None) -> None:
    """The person proved they hold this method: it becomes verified.

    It replaces the verified method in the same slot (the phone of the same
    kind, or the authenticator app), and becomes the default when it replaced
    the default or there was none. A mobile proven by text can take calls too,
    and the other way round.
    """
    now = svc.clock.now()
    replaced = [m for m in method.user.verified_methods() if m.id != method.id and same_slot(m, method)]
    had_default = any(m.is_default for m in replaced)
    old_numbers = change_notices.replaced_numbers(svc, replaced)  # told of the change: read before the delete
    for old in replaced:
        db.delete(old)
    method.verified_at = now
    number = svc.vault.decrypt(method.phone_encrypted) if method.phone_encrypted else None
    if method_type(method).proves_number_ownership and number:  # calls to it may resume
        db.execute(delete(DoNotCall).where(phone_lookup_matches(DoNotCall.phone_lookup, svc.vault, number)))
    for twin_type in _twin_types(method, number):
        db.add(Method(
            user_id=method.user_id, type=twin_type, kind=method.kind, label=method.label,
            phone_encrypted=method.phone_encrypted, phone_lookup=method.phone_lookup,
            verified_at=now, created_at=now, is_default=False,
        ))
    db.flush()
    db.expire(method.user, ["methods"])
    if had_default or not any(m.is_default for m in method.user.verified_methods()):
        make_default(db, method)
    audit.record(db, svc.clock, "method_registered", "ok", user=method.user, method=method.label,
                 source_ip=source_ip, detail=f"type={method.type} kind={method.kind or '-'}"
                 + (" (replaced the previous one)" if replaced else ""))
    change = change_notices.added(method, bool(replaced))
    if change is not None:  # the person's other phones are told (never this one, nor its twin)
        change_notices.notify(db, svc, method.user, change, phone=method if number else None,
                              exclude_method_ids=[method.id],
                              replaced_numbers=old_numbers if change == change_notices.PHONE_CHANGED else ())


def _twin_types(method: Method, number: str | None) -> list[str]:
    """A mobile proven one way (text or call) can be used the other ways too."""
    if method.kind != "mobile" or number is None:
        return []
    phone = phones.parse(number)
    if not phone.is_mobile:
        return []
    return [t.name for t in phone_deliveries() if t.name != method.type and t.accepts_phone(phone, "mobile")]


def same_slot(a: Method, b: Method) -> bool:
    """One authentication phone, one alternate, one office phone, one app."""
    if not (offered(a) and offered(b)):
        return False  # a stored type this server does not offer replaces nothing
    return method_type(a).slot(a) == method_type(b).slot(b)


def default_method(user: User) -> Method:
    """The method a sign-in starts with: the one the person chose, else their first."""
    verified = user.verified_methods()
    return next((m for m in verified if m.is_default), verified[0])


def method_to_start(db: Session, svc: Services, user: User) -> Method:
    """The method a page sign-in starts by itself: the default, unless it is a call the do-not-call
    list would refuse (every sign-in would begin with a refusal); then the first method offered."""
    default = default_method(user)
    if not _refused_call(db, svc, default) and spend.offered(db, svc, [default]):  # the usual case
        return default
    offer = methods_to_offer(db, svc, user)
    return offer[0] if offer else default


def registered_app(user: User) -> Method | None:
    """The person's verified authenticator app, if any."""
    return next((m for m in user.verified_methods() if m.type == AppCode.name), None)


def make_default(db: Session, method: Method) -> None:
    for other in db.scalars(select(Method).where(Method.user_id == method.user_id)):
        other.is_default = other.id == method.id


def methods_to_offer(db: Session, svc: Services, user: User) -> list[Method]:
    """The person's verified methods, less calls to a number whose answerer pressed 9 (do not call):
    offering one would only be refused. A text to that number still is (it lifts the refusal).
    No texts or calls at all while the day's telephony budget is spent (mfa/spend.py)."""
    return spend.offered(db, svc, [m for m in user.verified_methods() if not _refused_call(db, svc, m)])


def _refused_call(db: Session, svc: Services, method: Method) -> bool:
    """A call (of a type this server offers) to a number on the do-not-call list."""
    return (offered(method) and method_type(method).respects_do_not_call and method.phone_encrypted is not None
            and on_do_not_call_list(db, svc.vault, svc.vault.decrypt(method.phone_encrypted)))


def owned_verified_method(user: User, method_id: object) -> Method:
    for method in user.verified_methods():
        if method.id == method_id:
            return method
    raise Unprocessable("That method is not one of this person's verified methods.",
                        code="unknown_method")


def pending_totp_uri(db: Session, svc: Services, user: User, method_id: object) -> str:
    """The otpauth:// URI of an app enrolment this person has not finished (for its QR code)."""
    method = db.get(Method, method_id) if is_id(method_id) else None
    if method is None or method.user_id != user.id or method.type != AppCode.name or method.is_verified:
        raise NotPending("There is no authenticator-app set-up in progress.")
    assert method.totp_secret_encrypted is not None  # every app method has one
    secret = svc.vault.decrypt(method.totp_secret_encrypted)
    return totp.provisioning_uri(secret, user.username, svc.service_name)
