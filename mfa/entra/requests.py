"""One authorization request from Entra: checked, turned into a sign-in for the linked person,
and answered once, to Microsoft only (docs/entra.md).

The request's state, nonce and destination stay in `entra_requests` on the server; the browser
holds only its session. The answer is spent once (`answered_at`, and the sign-in's own
`exchanged_at`), and an id_token is given only for a method that proved the person's phone or app
and that Entra accepts (never a recovery code, a helpdesk pass or an app password).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Authentication, EntraRequest, Method, User
from models.states import AuthStatus, Reason
from mfa import approvals, audit, lockout
from mfa.authentications import check_password
from mfa.compare_and_set import compare_and_set
from mfa.entra import links, signing_keys
from mfa.entra.hints import Hint
from mfa.entra.profile import (MAX_FIELD, SIGN_IN_TTL, TOKEN_TTL, Declined, EntraConfig, Wanted, parse_claims,
                               redirect_uri_allowed)
from mfa.errors import MfaError, NotFound
from mfa.method_types import REGISTRY, method_type, offered
from mfa.methods import method_to_start, methods_to_offer
from mfa.services import Services

ENTRA = approvals.ENTRA  # the purpose of a sign-in Entra asked for (Authentication.purpose)
DENIED = "You were not verified, so Microsoft was told the sign-in failed."


class Unanswerable(MfaError):
    """Not a request Entra made for this provider: a plain 400 page, and nothing is posted anywhere."""

    code = "not_an_entra_request"

    def __init__(self, message: str, *, why: str):
        super().__init__(message)
        self.why = why


@dataclass(frozen=True)
class Destination:
    """Where an answer goes, and the `state` it carries back: known before anything else is checked."""

    redirect_uri: str
    state: str


@dataclass(frozen=True)
class AuthorizeRequest:
    destination: Destination
    nonce: str
    wanted: Wanted
    hint: str
    client_request_id: str | None


@dataclass(frozen=True)
class Answer:
    """The form posted back to Microsoft: id_token and state, or error, error_description and state."""

    redirect_uri: str
    fields: dict[str, str]
    approved: bool


def destination(form: Mapping[str, str], config: EntraConfig) -> Destination:
    redirect_uri = form.get("redirect_uri")
    if not redirect_uri_allowed(redirect_uri):
        raise Unanswerable("This sign-in request names a return address that is not Microsoft's.",
                           why="bad_redirect_uri")
    if form.get("client_id") != config.client_id:
        raise Unanswerable("This sign-in request is not for this service (unknown client_id).",
                           why="unknown_client_id")
    state = form.get("state", "")
    if len(state) > MAX_FIELD or not state.isprintable():
        raise Unanswerable("This sign-in request's state is not one Entra would send.", why="bad_state")
    assert redirect_uri is not None  # redirect_uri_allowed said so
    return Destination(redirect_uri, state)


def parse(form: Mapping[str, str], to: Destination) -> AuthorizeRequest:
    """Microsoft's parameters; anything else in the form is ignored, as OpenID Connect says."""
    if form.get("response_type", "id_token") != "id_token" or form.get("response_mode", "form_post") != "form_post":
        raise Declined("Only response_type=id_token with response_mode=form_post is supported.",
                       why="bad_response_type")
    if "openid" not in form.get("scope", "openid").split():
        raise Declined("The scope must include openid.", why="bad_scope")
    nonce = form.get("nonce", "")
    if not nonce or len(nonce) > 255 or not nonce.isprintable():
        raise Declined("The sign-in request needs a nonce (at most 255 characters).", why="bad_nonce")
    claims = form.get("claims")
    if claims is not None and len(claims) > MAX_FIELD:
        raise Declined("The claims parameter is too long.", why="malformed_claims")
    request_id = form.get("client-request-id") or None
    if request_id is not None and not (request_id.isascii() and request_id.isprintable()):
        request_id = None  # only ever logged: a malformed one is dropped, not a reason to refuse
    return AuthorizeRequest(to, nonce, parse_claims(claims), form.get("id_token_hint", ""),
                            request_id[:64] if request_id else None)


class NotLinked(Declined):
    """No person here answers for this Entra user yet: they may link themselves (begin_linking)."""

    def __init__(self) -> None:
        super().__init__("This Microsoft account is not linked to anyone here: ask the service desk to link it.",
                         why="unknown_person")


@dataclass(frozen=True)
class Started:
    authentication: Authentication
    method: Method


def begin(db: Session, svc: Services, request: AuthorizeRequest, hint: Hint, source_ip: str | None) -> Started:
    """The linked person's sign-in, with the method it starts with; Declined (audited) before
    anything is created, and before anyone is called, when it cannot be served."""
    try:
        return _begin(db, svc, request, hint, source_ip)
    except Declined as refusal:
        declined(db, svc, refusal, hint, source_ip)
        raise


def begin_linking(db: Session, svc: Services, request: AuthorizeRequest, hint: Hint, password: object,
                  source_ip: str | None) -> Started:
    """The person links an Entra user no one answers for yet, to the account here with the same username
    as their Entra sign-in name (the hint's preferred_username): its password now, its second factor next,
    and the link is made only when that approves (answer). Only that account: someone who knows another
    person's Entra password must not be able to link that Entra user to an account of their own.
    A wrong password is refused as on the sign-in page (InvalidCredentials, AccountLocked: counted towards
    lockout); Declined as for begin."""
    name = hint.username
    if not name or not name.isascii() or not name.isprintable() or name != name.strip():
        # Plain names only: Unicode spaces or letters that lower-case to ASCII must not reach another account.
        raise Declined("Microsoft did not give a sign-in name this service can use: ask the service desk to "
                       "link your account.", why="no_username")
    user = check_password(db, svc, name, password, source_ip)
    try:
        if links.person(db, hint.tenant_id, hint.object_id) not in (None, user):
            raise Declined("This Microsoft account is linked to someone else.", why="linked_to_another")
        if links.linked_elsewhere(db, user, hint.tenant_id, hint.object_id):
            raise Declined("Your account here is already linked to another Microsoft account: ask the service desk.",
                           why="person_linked_elsewhere")
        return _begin(db, svc, request, hint, source_ip, linking=user)
    except Declined as refusal:
        declined(db, svc, refusal, hint, source_ip, user=user, linking=True)
        raise


def _begin(db: Session, svc: Services, request: AuthorizeRequest, hint: Hint, source_ip: str | None,
           linking: User | None = None) -> Started:
    acr = request.wanted.acr()
    user = linking or links.person(db, hint.tenant_id, hint.object_id)
    if user is None:
        raise NotLinked()
    now = svc.clock.now()
    if lockout.refuses(user, now, lockout.is_familiar(db, svc, user.id, source_ip)):
        raise Declined("This account is locked.", why="fraud_block" if user.fraud_blocked_at else "locked")
    if not user.verified_methods():
        raise Declined("This person has not set up a way to verify yet: they sign in to this service first.",
                       why="no_methods")
    usable = [m for m in methods_to_offer(db, svc, user) if offered(m) and request.wanted.allows(method_type(m).amr)]
    if not usable:
        raise Declined("None of this person's methods is one Entra accepts for this sign-in.", why="amr_not_met")
    first = method_to_start(db, svc, user)
    method = first if first in usable else usable[0]
    if db.scalar(select(EntraRequest.id).where(EntraRequest.nonce == request.nonce)) is not None:
        raise Declined("This sign-in request has been used already.", why="replayed_nonce")
    if db.scalar(select(EntraRequest.id).where(EntraRequest.hint_hash == hint.fingerprint)) is not None:
        raise Declined("This sign-in request has been used already.", why="replayed_hint")
    try:
        with db.begin_nested():  # both rows, or neither: a nonce seen meanwhile by another request wins
            auth = Authentication(user=user, source_ip=source_ip, created_at=now, expires_at=now + SIGN_IN_TTL,
                                  attempts=0, sends=0, purpose=ENTRA, status=AuthStatus.MFA_REQUIRED)
            db.add(auth)
            db.flush()
            db.add(EntraRequest(
                authentication_id=auth.id, tenant_id=hint.tenant_id, object_id=hint.object_id, subject=hint.subject,
                nonce=request.nonce, hint_hash=hint.fingerprint, links_on_approval=linking is not None,
                state=request.destination.state, redirect_uri=request.destination.redirect_uri, acr=acr,
                amr_allowed=_allowed(request.wanted), client_request_id=request.client_request_id,
                created_at=now))
            db.flush()
    except IntegrityError:  # the same nonce or hint, by another request meanwhile
        raise Declined("This sign-in request has been used already.", why="replayed_nonce") from None
    audit.record(db, svc.clock, "entra_request", "mfa_required", user=user, source_ip=source_ip,
                 detail=f"{'self-link; ' if linking else ''}{_who(hint)}; request {request.client_request_id or '-'}")
    return Started(auth, method)


def _allowed(wanted: Wanted) -> str:
    """What Entra accepts, as stored: "*" for anything, else only the amr values a method here can give."""
    if wanted.amrs is None:
        return "*"
    ours = {t.amr for t in REGISTRY.values()}
    return " ".join(dict.fromkeys(amr for amr in wanted.amrs if amr in ours))  # each once: fits the column


def usable_methods(db: Session, svc: Services, auth: Authentication) -> list[Method] | None:
    """The methods this sign-in may use when Entra asked for it (those Entra accepts); None for any other."""
    if auth.purpose != ENTRA:
        return None
    request = _request(db, auth)
    return [m for m in methods_to_offer(db, svc, auth.user) if offered(m) and request.allows(method_type(m).amr)]


def answer(db: Session, svc: Services, config: EntraConfig, auth: Authentication) -> Answer:
    """The one answer to Entra for this sign-in: an id_token when the person proved a method
    Entra accepts, else access_denied. A second call is AlreadyUsed."""
    request = _request(db, auth)
    now = svc.clock.now()
    if not compare_and_set(db, request, where=[EntraRequest.answered_at.is_(None)], answered_at=now):
        raise approvals.AlreadyUsed()
    # As it stands now: a code or # may have approved it since the caller loaded it (a cancel racing it).
    db.refresh(auth, ["status", "reason", "approved_with", "completed_at"])
    amr = REGISTRY[auth.approved_with].amr if auth.approved_with in REGISTRY else None
    proved = auth.status == AuthStatus.APPROVED and auth.reason == Reason.VERIFIED and amr is not None
    if proved and amr is not None and request.allows(amr):
        try:
            approvals.spend(db, svc, auth, ENTRA, None, None)
            if request.links_on_approval:  # proved here by password and second factor: linked from now on
                links.link_user(db, svc, auth.user, request.tenant_id, request.object_id, by="person")
        except MfaError as refusal:  # locked since, too late, or linked to someone else meanwhile: Entra hears no
            return _no(db, svc, request, auth, refusal.code)
        token = signing_keys.sign(db, svc, config.issuer, {
            "iss": config.issuer, "aud": config.client_id, "sub": request.subject, "nonce": request.nonce,
            "iat": int(now.timestamp()), "nbf": int(now.timestamp()), "exp": int((now + TOKEN_TTL).timestamp()),
            "acr": request.acr, "amr": [amr], "tid": request.tenant_id,
        })
        audit.record(db, svc.clock, "entra_answered", "approved", user=auth.user, method_type=auth.approved_with,
                     detail=f"acr {request.acr}, amr {amr}; request {request.client_request_id or '-'}")
        return Answer(request.redirect_uri, {"id_token": token, "state": request.state}, approved=True)
    return _no(db, svc, request, auth, auth.reason or auth.status)


def _no(db: Session, svc: Services, request: EntraRequest, auth: Authentication, why: str) -> Answer:
    audit.record(db, svc.clock, "entra_answered", "denied", user=auth.user, reason=why,
                 detail=f"request {request.client_request_id or '-'}")
    return refusal_answer(Destination(request.redirect_uri, request.state), "access_denied", DENIED)


def refusal_answer(to: Destination, error: str, description: str) -> Answer:
    return Answer(to.redirect_uri, {"error": error, "error_description": description, "state": to.state},
                  approved=False)


def declined(db: Session, svc: Services, refusal: Declined, hint: Hint | None, source_ip: str | None,
             user: User | None = None, linking: bool = False) -> None:
    """The audit line for a request refused before any sign-in began. `user`: the person whose password
    was proved on the link page (else whoever the Entra user is linked to)."""
    if user is None and hint is not None:
        user = links.person(db, hint.tenant_id, hint.object_id)
    detail = (("self-link; " if linking else "") + _who(hint)) if hint is not None else None
    audit.record(db, svc.clock, "entra_request", "declined", user=user, reason=refusal.why[:48], source_ip=source_ip,
                 detail=detail)


def unanswerable(db: Session, svc: Services, refusal: Unanswerable, source_ip: str | None) -> None:
    """The audit line for a request that was not Entra's for us (nothing was posted back)."""
    audit.record(db, svc.clock, "entra_request", "refused", reason=refusal.why, source_ip=source_ip)


def _who(hint: Hint) -> str:
    """Which Entra user asked: their ids only (no name or address, which the hint also carries)."""
    return f"tenant {hint.tenant_id}, object {hint.object_id}"


def _request(db: Session, auth: Authentication) -> EntraRequest:
    request = db.scalar(select(EntraRequest).where(EntraRequest.authentication_id == auth.id))
    if request is None:
        raise NotFound("This sign-in was not asked for by Entra.", code="not_found")
    return request

