"""Self-service changes for a signed-in person: methods, the default, the call language.

Adding or changing a phone or app reuses registration: `begin_change` opens a
short-lived sign-in in registering mode, and the new method is saved only when
its own challenge (a texted code, `#` on a call, an app code) succeeds.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models import Authentication, Method, User
from models.user import LANGUAGES
from models.states import AuthStatus
from mfa import audit, change_notices
from mfa.authentications import AUTHENTICATION_TTL
from mfa.browser_sessions import end_all_for_user
from mfa.errors import BadRequest, Unprocessable
from mfa.methods import make_default, owned_verified_method
from mfa.services import Services


def begin_change(db: Session, svc: Services, user: User, source_ip: str | None) -> Authentication:
    now = svc.clock.now()
    auth = Authentication(user=user, status=AuthStatus.REGISTRATION_REQUIRED, registering=True, purpose="change",
                          attempts=0, sends=0, source_ip=source_ip, created_at=now, expires_at=now + AUTHENTICATION_TTL)
    db.add(auth)
    db.flush()
    audit.record(db, svc.clock, "method_change_started", "pending", user=user, source_ip=source_ip)
    return auth


def set_default(db: Session, svc: Services, user: User, method_id: object, source_ip: str | None,
                keep_session: str | None = None) -> Method:
    """`keep_session`: the browser session making the change; the person's others end."""
    method = owned_verified_method(user, method_id)
    make_default(db, method)
    end_all_for_user(db, user.id, except_id=keep_session)
    audit.record(db, svc.clock, "default_method_changed", "ok", user=user, method=method.label,
                 source_ip=source_ip, detail=f"type={method.type}")
    return method


def remove_method(db: Session, svc: Services, user: User, method_id: object, source_ip: str | None,
                  keep_session: str | None = None) -> None:
    """Remove a method; a phone goes with both its text and call rows. Other sessions end."""
    method = owned_verified_method(user, method_id)
    # The twin row's hash may be under another current DATA_KEY (a rotation half done).
    same_number = svc.vault.keyed_hashes(svc.vault.decrypt(method.phone_encrypted)) if method.phone_encrypted else []
    gone = [m for m in user.verified_methods()
            if m.id == method.id or (m.phone_lookup in same_number and m.kind == method.kind)]
    remaining = [m for m in user.verified_methods() if m not in gone]
    if not remaining and svc.policy.requires_mfa(user):
        raise Unprocessable("This is your only way to verify. Add another method before removing it.",
                            code="last_method")
    was_default = any(m.is_default for m in gone)
    for m in gone:
        db.delete(m)
    db.flush()
    db.expire(user, ["methods"])
    if was_default and remaining:
        make_default(db, remaining[0])
    end_all_for_user(db, user.id, except_id=keep_session)
    audit.record(db, svc.clock, "method_removed", "ok", user=user, method=method.label,
                 source_ip=source_ip, detail=f"type={method.type} kind={method.kind or '-'}")
    change = change_notices.removed(method)
    if change is not None:  # the phones that remain are told (never the one removed)
        change_notices.notify(db, svc, user, change, phone=method if method.phone_encrypted else None,
                              exclude_method_ids=[m.id for m in gone])


def set_language(db: Session, svc: Services, user: User, language: Any, source_ip: str | None) -> None:
    if language not in LANGUAGES:
        raise BadRequest(f"Choose one of: {', '.join(LANGUAGES)}.", field="language")
    user.language = language
    audit.record(db, svc.clock, "call_language_changed", "ok", user=user, source_ip=source_ip,
                 detail=language)
