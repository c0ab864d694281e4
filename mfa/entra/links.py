"""Which person here an Entra user (tenant id, object id) signs in as: set by an operator
(`flask --app app users link-entra`), or by the person once, with the password and second factor of the
account named like their Entra sign-in (mfa/entra/requests.py begin_linking). Found by ids, never by name."""
from __future__ import annotations


from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import EntraLink, User
from mfa import audit
from mfa.accounts import get_user
from mfa.entra.profile import GUID
from mfa.errors import BadRequest, Conflict
from mfa.services import Services



def link(db: Session, svc: Services, username: str, tenant_id: str, object_id: str) -> EntraLink:
    tenant_id, object_id = tenant_id.strip().lower(), object_id.strip().lower()
    for value, name in ((tenant_id, "tenant ID"), (object_id, "object ID")):
        if not GUID.fullmatch(value):
            raise BadRequest(f"The {name} must be a GUID such as 00001111-aaaa-2222-bbbb-3333cccc4444.")
    return link_user(db, svc, get_user(db, username), tenant_id, object_id, by="operator")


def link_user(db: Session, svc: Services, user: User, tenant_id: str, object_id: str, *, by: str) -> EntraLink:
    """`by`: "operator" (the command line) or "person" (their own password and second factor, once)."""
    existing = db.scalar(select(EntraLink).where(EntraLink.tenant_id == tenant_id, EntraLink.object_id == object_id))
    if existing is not None:
        if existing.user_id == user.id:
            return existing
        raise Conflict(f"That Entra user already signs in as {existing.user.username}.", code="already_linked")
    if by == "person" and linked_elsewhere(db, user, tenant_id, object_id):  # looked at again: one each
        raise Conflict("This account is already linked to another Entra user of the tenant.", code="linked_elsewhere")
    found = EntraLink(user=user, tenant_id=tenant_id, object_id=object_id, created_at=svc.clock.now())
    try:
        with db.begin_nested():
            db.add(found)
            db.flush()
    except IntegrityError:  # linked by another request meanwhile
        raise Conflict("That Entra user has just been linked to someone.", code="already_linked") from None
    audit.record(db, svc.clock, "entra_linked", "ok", user=user,
                 detail=f"tenant {tenant_id}, object {object_id}, by the {by}")
    return found


def linked_elsewhere(db: Session, user: User, tenant_id: str, object_id: str) -> bool:
    """Whether the person already answers for another Entra user of that tenant (one each)."""
    return db.scalar(select(EntraLink.id).where(EntraLink.user_id == user.id, EntraLink.tenant_id == tenant_id,
                                                EntraLink.object_id != object_id).limit(1)) is not None


def unlink(db: Session, svc: Services, username: str, tenant_id: str | None = None) -> int:
    """Forget the person's Entra links (in one tenant, or all): how many went. Their next Entra sign-in
    is linked again (by themselves, or an operator)."""
    user = get_user(db, username)
    found = [row for row in of(db, user) if tenant_id is None or row.tenant_id == tenant_id.strip().lower()]
    for row in found:
        db.delete(row)
        audit.record(db, svc.clock, "entra_unlinked", "ok", user=user,
                     detail=f"tenant {row.tenant_id}, object {row.object_id}, by the operator")
    db.flush()
    return len(found)


def person(db: Session, tenant_id: str, object_id: str) -> User | None:
    return db.scalar(select(User).join(EntraLink, EntraLink.user_id == User.id)
                     .where(EntraLink.tenant_id == tenant_id, EntraLink.object_id == object_id))


def of(db: Session, user: User) -> list[EntraLink]:
    return list(db.scalars(select(EntraLink).where(EntraLink.user_id == user.id).order_by(EntraLink.created_at)))
