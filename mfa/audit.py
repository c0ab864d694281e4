"""The audit trail: a row per event, and the same facts in the operator log."""
from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from models import AuditEvent, User
from mfa import metrics
from mfa.clock import Clock

log = logging.getLogger("mfa.audit")


def record(
    db: Session,
    clock: Clock,
    event: str,
    outcome: str,
    *,
    user: User | None = None,
    username: str | None = None,
    method: str | None = None,
    reason: str | None = None,
    source_ip: str | None = None,
    detail: str | None = None,
) -> AuditEvent:
    """`method` and `detail` must already be masked: callers pass labels, never numbers."""
    row = AuditEvent(
        at=clock.now(),
        user_id=user.id if user else None,
        username=user.username if user else username,
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
    metrics.count_audit_event(db, event, outcome, method, reason, detail)  # counted on commit
    return row
