"""The person gives up a sign-in under way ("Cancel signing in", or signing out): it ends on the server too.

Denied `cancelled_by_person`, which is final (unlike a call's `canceled`, which ends only that call):
nothing can approve it any more. Its texts end with it. A sign-in call is left ringing on purpose:
whoever pressed Cancel may be someone with the password, and the phone's owner must still be able
to answer and press 0 then # to report it (mfa/calls.py lets a cancelled sign-in's call report fraud
or stop calls, and says goodbye to `#`); a sign-in's push likewise stays on the phone app, where
"This wasn't me" still reports it and Approve approves nothing (mfa/push_approvals.py). A set-up
call (registration) offers no fraud report, so it
is hung up: its CallSid is returned for the edge to end after its commit (calls.end_calls), never a
network call inside a transaction.
"""
from __future__ import annotations

from sqlalchemy import and_, bindparam, not_, select, update
from sqlalchemy.orm import Session

from models import Authentication, Challenge, User
from models.states import OPEN_STATUSES, AuthStatus, ChallengeStatus, Reason
from mfa import audit, browser_sessions, unheard
from mfa.authentications import can_continue, finish, get
from mfa.errors import NotFound
from mfa.locks import is_sqlite
from mfa.method_types import types_where
from mfa.services import Services

CALL_TYPES = types_where(ends_by_hanging_up=True)
# A sign-in's call or push stays open to a fraud report: 0# on the call, "This wasn't me" on the phone app.
REPORTABLE = and_(Challenge.type.in_(CALL_TYPES + types_where(approved_on_device=True)),
                  Challenge.purpose != "registration")
# The sign-in's pending texts and set-up calls, ended; what each was (its type, and its call's sid).
END_PENDING = (
    update(Challenge)
    .where(Challenge.authentication_id == bindparam("auth_id"), Challenge.status == ChallengeStatus.PENDING,
           not_(REPORTABLE))
    .values(status=ChallengeStatus.ENDED, reason=Reason.CANCELLED_BY_PERSON.value)
    .returning(Challenge.id, Challenge.type, Challenge.provider_sid, Challenge.call_step, Challenge.last_sent_at)
    .execution_options(synchronize_session=False)
)


def cancel(db: Session, svc: Services, auth_or_id: Authentication | object) -> list[str]:
    """End a sign-in that could still go on; the set-up calls to hang up once this is committed.

    A sign-in already approved, denied for good, expired, locked or gone is left as it is: [].
    """
    auth = auth_or_id if isinstance(auth_or_id, Authentication) else _found(db, svc, auth_or_id)
    if auth is None or not can_continue(auth, svc.clock.now()):
        return []
    # The challenges first, then the sign-in: the order a call's webhook takes them in (mfa/locks.py).
    ended = db.execute(END_PENDING, {"auth_id": auth.id}).all()
    unheard.note_unheard(db, svc.clock.now(), ended)
    if finish(db, svc, auth, AuthStatus.DENIED, Reason.CANCELLED_BY_PERSON, challenges_ended=True,
              retryable_too=True):
        audit.record(db, svc.clock, "sign_in", "cancelled", user=auth.user, reason=Reason.CANCELLED_BY_PERSON,
                     source_ip=auth.source_ip, detail="Cancel pressed, or signed out, while it was under way")
    # Even if something else ended the sign-in meanwhile: the set-up calls ended here must not ring on.
    return [row.provider_sid for row in ended if row.type in CALL_TYPES and row.provider_sid]


def sign_out_everywhere(db: Session, svc: Services, user: User, source_ip: str | None) -> list[str]:
    """The person's own "sign out everywhere": every browser session ends, and so does every sign-in
    under way in a browser (someone with the password may be at its second step). Sign-ins a relying
    application started through the API are its own, and go on. Returns the calls to hang up."""
    calls = [sid for auth in _sign_ins_to_end(db, svc, user) for sid in cancel(db, svc, auth)]
    browser_sessions.sign_out_everywhere(db, svc, user, source_ip)
    return calls


def _sign_ins_to_end(db: Session, svc: Services, user: User) -> list[Authentication]:
    """The person's page sign-ins that may still go on, locked: their challenges first, then the sign-ins
    (mfa/locks.py). One whose rows another request holds is skipped, not waited for: that request (a
    `0#` or `#` on its call) is ending it, and waiting could deadlock with it (it ends the person's
    other sign-ins after taking its own)."""
    under_way = (select(Authentication.id)
                 .where(Authentication.user_id == user.id, Authentication.api_key_id.is_(None),
                        Authentication.status.in_(OPEN_STATUSES + (AuthStatus.DENIED,)),
                        Authentication.expires_at > svc.clock.now()))
    sign_ins = select(Authentication).where(Authentication.id.in_(under_way)).order_by(Authentication.id)
    if is_sqlite(db):  # SQLite: its one writer never waits on rows
        return list(db.scalars(sign_ins))
    pending = db.execute(select(Challenge.id, Challenge.authentication_id).where(
        Challenge.authentication_id.in_(under_way), Challenge.status == ChallengeStatus.PENDING)).all()
    held = set(db.scalars(select(Challenge.id).where(Challenge.id.in_([row.id for row in pending]))
                          .order_by(Challenge.id).with_for_update(skip_locked=True)))
    busy = {row.authentication_id for row in pending if row.id not in held}
    return list(db.scalars(sign_ins.where(Authentication.id.not_in(busy)).with_for_update(skip_locked=True)))


def _found(db: Session, svc: Services, auth_id: object) -> Authentication | None:
    try:
        return get(db, svc, auth_id)
    except NotFound:
        return None
