"""Sign-ins: from a correct password to approved, denied, expired or locked."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, and_, bindparam, or_, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import Session

from models import Authentication, Challenge, RememberedBrowser, User
from models.states import OPEN_STATUSES, RETRYABLE_DENIALS, AuthStatus, ChallengeStatus, Reason
from models.base import is_id
from mfa import audit, facts, lockout, remembered_browsers, unheard
from mfa.accounts import find_user
from mfa.compare_and_set import compare_and_set
from mfa.errors import AccountLocked, BadRequest, InvalidCredentials, NotFound
from mfa.locks import is_sqlite
from mfa.method_types import ON_DEVICE
from mfa.passwords import MAX_LENGTH
from mfa.services import Services

AUTHENTICATION_TTL = timedelta(minutes=10)
# A sign-in with its person and their methods, in one statement (a person has a handful of
# methods, so the repeated person columns cost less than a second query would).
WITH_PERSON = [joinedload(Authentication.user).joinedload(User.methods)]
# A sign-in's pending challenges, ended as it ends (finish), built once.
END_PENDING = (
    update(Challenge)
    .where(Challenge.authentication_id == bindparam("auth_id"), Challenge.status == ChallengeStatus.PENDING)
    .values(status=ChallengeStatus.ENDED, reason=bindparam("reason", type_=String))
    # What mfa/unheard.py needs to tell whether Twilio ever reported on them.
    .returning(Challenge.id, Challenge.type, Challenge.provider_sid, Challenge.call_step, Challenge.last_sent_at)
    .execution_options(synchronize_session=False)
)


def require_text(value: object, field: str, max_length: int = MAX_LENGTH) -> str:
    """A non-empty string that a database and a hash function can take (no NUL, valid UTF-8)."""
    label = field.replace("_", " ")  # the sentence is for people; `field` names it for programs
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Enter the {label}.", field=field)
    if len(value) > max_length:
        raise BadRequest(f"The {label} is too long: at most {max_length} characters.", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"The {label} has characters that are not allowed.", field=field) from None
    if "\x00" in value:
        raise BadRequest(f"The {label} has characters that are not allowed.", field=field)
    return value


def start(
    db: Session, svc: Services, username: object, password: object, source_ip: str | None,
    api_key_id: str | None = None, remembered_token: object = None,
) -> Authentication:
    """Check the first factor and decide what the sign-in needs next.

    `api_key_id` is the relying application that asked (None for the server's own pages):
    the sign-in belongs to it, and only it can see or continue it (see owned_by).
    `remembered_token`: the server's own pages pass the browser's remembered-browser cookie;
    when it is this person's and still valid, no second factor is asked (mfa/remembered_browsers.py).
    """
    user = check_password(db, svc, username, password, source_ip, api_key_id)
    return _open(db, svc, user, source_ip, api_key_id, remembered_token)


def check_password(db: Session, svc: Services, username: object, password: object, source_ip: str | None,
                   api_key_id: str | None = None) -> User:
    """The person whose password this is; refused (audited, counted towards lockout) otherwise."""
    username = require_text(username, "username", 254)
    password = require_text(password, "password")
    now = svc.clock.now()
    user = find_user(db, username)
    if user is None:
        svc.passwords.verify(None, password)  # same work as a real check: no timing oracle
        audit.record(db, svc.clock, "sign_in", "failed", username=audit.unknown_username(svc.vault, username),
                     reason="unknown_user", source_ip=source_ip, method_type=facts.PASSWORD)
        raise InvalidCredentials()
    # A relying application's sign-in comes from its server, not the person: never familiar (mfa/lockout.py).
    familiar = api_key_id is None and lockout.is_familiar(db, svc, user.id, source_ip)
    if lockout.refuses(user, now, familiar):
        # Answer before checking the password, so a locked account reveals nothing. An unfamiliar
        # source's lockout leaves the person's familiar sources open (smart lockout, mfa/lockout.py).
        reason = "fraud_block" if user.fraud_blocked_at else "locked"
        audit.record(db, svc.clock, "sign_in", "refused", user=user, reason=reason, source_ip=source_ip,
                     method_type=facts.PASSWORD, detail=None if user.is_locked(now) else "unfamiliar source")
        raise AccountLocked()
    if not svc.passwords.verify(user.password_hash, password):
        audit.record(db, svc.clock, "sign_in", "failed", user=user, reason="wrong_password",
                     source_ip=source_ip, method_type=facts.PASSWORD)
        if lockout.record_failure(db, svc, user, source_ip, familiar=familiar):
            raise AccountLocked()
        raise InvalidCredentials()
    user.password_hash = svc.passwords.rehash_if_needed(user.password_hash, password)
    return user


def _open(db: Session, svc: Services, user: User, source_ip: str | None,
          api_key_id: str | None, remembered_token: object = None) -> Authentication:
    now = svc.clock.now()
    auth = Authentication(
        user=user, source_ip=source_ip, created_at=now, expires_at=now + AUTHENTICATION_TTL,
        attempts=0, sends=0, purpose="sign_in", api_key_id=api_key_id,
    )
    why = svc.policy.explain(user)
    if not svc.policy.requires_mfa(user):
        auth.status, auth.reason, auth.completed_at = AuthStatus.APPROVED, Reason.MFA_NOT_REQUIRED, now
        lockout.signed_in(db, svc, user, source_ip, via_api=api_key_id is not None)  # its source becomes familiar
        audit.record(db, svc.clock, "sign_in", "approved", user=user, reason=Reason.MFA_NOT_REQUIRED,
                     source_ip=source_ip, detail=why, method_type=facts.PASSWORD)
    elif (remembered := _remembered(db, svc, user, api_key_id, remembered_token)) is not None:
        auth.status, auth.reason, auth.completed_at = AuthStatus.APPROVED, Reason.REMEMBERED_BROWSER, now
        lockout.signed_in(db, svc, user, source_ip, via_api=api_key_id is not None)  # passed the second step before
        audit.record(db, svc.clock, "sign_in", "approved", user=user, reason=Reason.REMEMBERED_BROWSER,
                     source_ip=source_ip, detail=f"remembered browser {remembered.id}", method_type=facts.PASSWORD)
    else:
        auth.status = AuthStatus.MFA_REQUIRED if user.verified_methods() else AuthStatus.REGISTRATION_REQUIRED
        auth.registering = auth.status == AuthStatus.REGISTRATION_REQUIRED
        audit.record(db, svc.clock, "password_checked", auth.status, user=user,
                     source_ip=source_ip, detail=why, method_type=facts.PASSWORD)
    db.add(auth)
    db.flush()
    return auth


def _remembered(db: Session, svc: Services, user: User, api_key_id: str | None,
                token: object) -> RememberedBrowser | None:
    """The remembered browser that lets this page sign-in skip the second step, if any.

    Never for a relying application's sign-in, nor for someone with no verified method
    (registration is never skipped)."""
    if api_key_id is not None or token is None or not user.verified_methods():
        return None
    return remembered_browsers.skips_second_step(db, svc, user, token)


def owned_by(db: Session, auth_id: object, api_key_id: str | None) -> Authentication | None:
    """The sign-in if it exists and was started through that API key, else None.

    Another key, or a sign-in started on the pages (no key), gets the same answer as an
    unknown id. Loaded as get() loads it: while the caller holds it, the use case that
    follows finds it in the session and costs no extra query.
    """
    if api_key_id is None or not is_id(auth_id):
        return None
    auth = db.get(Authentication, auth_id,
                  options=WITH_PERSON)
    return auth if auth is not None and auth.api_key_id == api_key_id else None


def get(db: Session, svc: Services, auth_id: object) -> Authentication:
    """The authentication as it stands now (an overdue one is marked expired)."""
    if not is_id(auth_id):
        raise NotFound("No such authentication.", code="not_found")
    # The person and their methods come along: every use case looks at them.
    auth = db.get(Authentication, auth_id,
                  options=WITH_PERSON)
    if auth is None:
        raise NotFound("No such authentication.", code="not_found")
    if auth.has_expired(svc.clock.now()):
        if finish(db, svc, auth, AuthStatus.EXPIRED, Reason.TIMED_OUT, overdue=True):
            audit.record(db, svc.clock, "sign_in", "expired", user=auth.user, reason=Reason.TIMED_OUT)
    elif auth.status == AuthStatus.PENDING and any(m.type in ON_DEVICE for m in auth.user.methods):
        end_unanswered_push(db, svc, auth)
    return auth


def end_unanswered_push(db: Session, svc: Services, auth: Authentication) -> None:
    """A push nobody answered on the phone within its lifetime: the sign-in is denied `no_response`,
    which it may retry (nothing else would end it: no provider calls back about a push)."""
    overdue = db.scalars(
        update(Challenge)
        .where(Challenge.authentication_id == auth.id, Challenge.status == ChallengeStatus.PENDING,
               Challenge.type.in_(ON_DEVICE), Challenge.expires_at <= svc.clock.now())
        .values(status=ChallengeStatus.DENIED, reason=Reason.NO_RESPONSE)
        .returning(Challenge.id)
        .execution_options(synchronize_session=False)
    ).all()
    if overdue and finish(db, svc, auth, AuthStatus.DENIED, Reason.NO_RESPONSE, challenges_ended=True):
        audit.record(db, svc.clock, "challenge_failed", "denied", user=auth.user, reason=Reason.NO_RESPONSE,
                     method_type=ON_DEVICE[0], detail="the phone app did not answer in time")


def finish(db: Session, svc: Services, auth: Authentication, status: AuthStatus, reason: Reason, *,
           challenges_ended: bool = False, overdue: bool = False, retryable_too: bool = False,
           approved_with: str | None = None) -> bool:
    """Move an open authentication to a final status; False if it had already ended.

    A compare-and-set, so of two workers finishing the same sign-in only one wins. Its pending
    challenges end first, in the same transaction (end_challenges says why first).
    `challenges_ended`: the caller already ended the sign-in's pending challenges (calls.claim
    with `ending_the_rest`, or end_challenges), which saves a statement.
    `overdue`: expiring it, which also ends a sign-in whose last call or text failed (it could
    go on until now: the person would otherwise be offered "Call me again" that cannot work).
    `retryable_too`: also end a sign-in whose last call or text failed, though not overdue (the
    person cancelling it, mfa/cancellation.py).
    `approved_with`: the method type whose second factor approved it (an Entra answer's `amr` says which).
    Approving it makes its source familiar to the person (even should the compare-and-set lose:
    the caller has just checked the second factor from there) and, if it wins, ends the person's
    chain of failures (mfa/lockout.py).
    """
    now = svc.clock.now()
    could_go_on = or_(Authentication.status.in_(OPEN_STATUSES),
                      and_(Authentication.status == AuthStatus.DENIED, Authentication.reason.in_(RETRYABLE_DENIALS)))
    if not challenges_ended:
        end_challenges(db, svc, auth, reason)
    approving = status == AuthStatus.APPROVED
    if approving:
        # The one place every second factor approves a sign-in (codes, calls, the phone app, and
        # whatever comes next): its source becomes familiar to the person (not a relying application's
    # through the API). Before the sign-in's
        # compare-and-set, in the lock order (mfa/locks.py): this refers to the person's row, and
        # locks it when their failures will be reset.
        lockout.approving(db, svc, auth.user, auth.source_ip, via_api=auth.api_key_id is not None)
    won = compare_and_set(db, auth, where=[could_go_on if overdue or retryable_too
                                               else Authentication.status.in_(OPEN_STATUSES)],
                          status=status, reason=reason, completed_at=now,
                          **({"approved_with": approved_with} if approved_with else {}))
    if won and approving:
        lockout.reset_failures(db, auth.user)  # the chain of failures ends
    return won


def end_challenges(db: Session, svc: Services, auth: Authentication, reason: Reason) -> None:
    """End the calls and texts under way for a sign-in that is ending: before its compare-and-set.

    The challenges before the sign-in is the order a call's webhook takes them in (calls.claim,
    then finish). Taken the other way round, the two could each hold the row the other waits for
    (PostgreSQL: "deadlock detected", and one request fails). Should the sign-in's compare-and-set
    then lose, it had already ended: whoever ended it ended these first, so this matched none (a
    straggler's call only hears goodbye sooner, as its webhook would say for an ended sign-in).
    """
    if auth.status == AuthStatus.PENDING:  # only a pending sign-in has challenges under way
        ended = db.execute(END_PENDING, {"auth_id": auth.id, "reason": reason.value}).all()
        unheard.note_unheard(db, svc.clock.now(), ended)


def hold_challenges(db: Session, auth: Authentication) -> None:
    """Lock the calls and texts under way for a sign-in that a use case may go on to end, before it
    locks the person or the sign-in (end_challenges says why; a wrong code, checks._refuse)."""
    if auth.status == AuthStatus.PENDING and not is_sqlite(db):  # SQLite: its one writer never waits on rows
        db.execute(select(Challenge.id).where(Challenge.authentication_id == auth.id,
                                              Challenge.status == ChallengeStatus.PENDING).with_for_update())


def can_continue(auth: Authentication, now: datetime) -> bool:
    """Open, or denied for a reason that ends only that challenge, and not yet expired."""
    return (auth.is_open() or auth.can_retry()) and now < auth.expires_at


def set_status(db: Session, svc: Services, auth: Authentication, status: AuthStatus) -> bool:
    """Move a sign-in that can continue to another open status (e.g. to `pending`)."""
    return compare_and_set(db, auth, where=[
        Authentication.expires_at > svc.clock.now(),
        or_(
            Authentication.status.in_(OPEN_STATUSES),
            and_(Authentication.status == AuthStatus.DENIED, Authentication.reason.in_(RETRYABLE_DENIALS)),
        ),
    ], status=status, reason=None)
