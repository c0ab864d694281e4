"""An approved sign-in is spent exactly once: it becomes one browser session, or one change.

The spend is a compare-and-set on `authentications.exchanged_at`, so of two browsers
presenting the same flow (a copied cookie, a double click, two workers) only one wins, and
everything the win brings (the new session, ending the person's other sessions) is written
in the same transaction as the spend.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models import Authentication
from models.states import AuthStatus
from mfa import audit, browser_sessions
from mfa.compare_and_set import compare_and_set
from mfa.errors import AccountLocked, Conflict
from mfa.services import Services

# An approval not turned into a session within this time is void: the page that waits for
# it moves on within seconds, and an approval left lying around is only useful to someone else.
SPEND_WITHIN = timedelta(minutes=5)
ENTRA = "entra"  # mfa/entra/requests.py: a sign-in Entra asked for, answered with an id_token
ALREADY_USED = "This sign-in has already been used. Sign in again."
TOO_LATE = "This sign-in took too long and has expired. Sign in again."


class AlreadyUsed(Conflict):
    code = "already_used"
    message = ALREADY_USED


@dataclass(frozen=True)
class Spent:
    session_id: str | None  # the new browser session (a sign-in); None for a change
    signed_in_at: datetime | None


def spend(db: Session, svc: Services, auth: Authentication, purpose: str,
          session_id: str | None, session_user_id: str | None) -> Spent:
    """Turn the approved sign-in `auth` into what `purpose` asks for, once.

    purpose "sign_in": the browser session `session_id` is replaced by a new signed-in one
    (nothing from before carries over). purpose "change": the signed-in person's security info
    change is done; their other sessions end, this one stays.
    """
    now = svc.clock.now()
    conditions = [
        Authentication.status == AuthStatus.APPROVED,
        Authentication.exchanged_at.is_(None),
        Authentication.api_key_id.is_(None),  # a relying application's sign-in opens no page session
        Authentication.purpose == purpose,
        Authentication.completed_at > now - SPEND_WITHIN,
    ]
    if purpose == "change":
        conditions.append(Authentication.user_id == session_user_id)
    if not compare_and_set(db, auth, where=conditions, read_back=["status", "completed_at"], exchanged_at=now):
        used = auth.exchanged_at is not None
        audit.record(db, svc.clock, "approval_spent", "refused", user=auth.user,
                     reason="already_used" if used else "not_spendable", detail=f"purpose={purpose}")
        raise AlreadyUsed(ALREADY_USED if used or auth.status != AuthStatus.APPROVED else TOO_LATE)
    db.refresh(auth.user, ["locked_until", "fraud_blocked_at"])
    if auth.user.is_locked(now):  # locked or blocked since the approval: it opens nothing
        audit.record(db, svc.clock, "approval_spent", "refused", user=auth.user, reason="locked",
                     detail=f"purpose={purpose}")
        raise AccountLocked()
    if purpose == ENTRA:  # answered to Entra (mfa/entra/requests.py): no session here changes
        return Spent(None, None)
    if purpose == "change":
        ended = browser_sessions.end_all_for_user(db, auth.user_id, except_id=session_id)
        audit.record(db, svc.clock, "method_changed_sessions_ended", "ok", user=auth.user,
                     detail=f"{ended} other session(s) ended")
        return Spent(None, None)
    browser_sessions.end(db, session_id)
    # No app password here: the registration wizard offers one, for the few who need it.
    new_id = browser_sessions.create(db, svc, {}, user_id=auth.user_id, signed_in_at=now)
    return Spent(new_id, now)
