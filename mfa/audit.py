"""The audit trail: a row per event, and the same facts in the operator log."""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from models import AuditEvent, User
from mfa import facts
from mfa.clock import Clock
from mfa.usernames import normalise_username

if TYPE_CHECKING:
    from mfa.vault import Vault

log = logging.getLogger("mfa.audit")

UNKNOWN_USER = "unknown user"
HASHED_UNKNOWN = re.compile(UNKNOWN_USER + r" [0-9a-f]{32}")


def unknown_username(vault: Vault, typed: str) -> str:
    """What the trail keeps of a name that matches no one: never the name itself (people type
    their password into the username field), but a keyed hash of it, so that repeated tries
    of one name still group together and an operator can check a name they suspect."""
    return f"{UNKNOWN_USER} {vault.keyed_hash('audit-username:' + normalise_username(typed))[:32]}"


def record(
    db: Session,
    clock: Clock,
    event: str,
    outcome: str,
    *,
    user: User | None = None,
    username: str | None = None,
    method: str | None = None,
    method_type: str | None = None,
    reason: str | None = None,
    source_ip: str | None = None,
    detail: str | None = None,
) -> AuditEvent:
    """`method` and `detail` must already be masked: callers pass labels, never numbers.
    `username` (when no `user`) is what unknown_username() made of the name typed.
    `method_type` is the kind of method that had a part in it: the method's own `type`, or
    facts.PASSWORD / facts.TYPED_CODE; None when none had (operators' counters use it)."""
    row = AuditEvent(
        at=clock.now(),
        user_id=user.id if user else None,
        username=user.username if user else _never_verbatim(username),
        event=event,
        method=method,
        outcome=outcome,
        reason=reason,
        source_ip=source_ip,
        detail=detail,
    )
    db.add(row)
    log.info(
        "audit event=%s outcome=%s user=%s method=%s reason=%s ip=%s",
        event, outcome, row.username, method, reason, source_ip,
    )
    facts.note(db, facts.Outcome(event, outcome, method_type, reason))  # counted by ops on commit
    return row


def _never_verbatim(username: str | None) -> str | None:
    """A name from outside reaches the trail only through unknown_username()."""
    if username is None or HASHED_UNKNOWN.fullmatch(username):
        return username
    return UNKNOWN_USER
