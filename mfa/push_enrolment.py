"""Setting up a phone for push approvals: a single-use enrolment link, then the device's own key.

1. register_push (while a sign-in registers, or a security-info change): an unverified `push`
   method and its device row holding the SHA-256 of a random token; the link carries the token
   in its fragment, so browsers never send it to the server and no access log holds it.
2. enrol_device (the phone, signed with the key it just made): the token is spent by a
   compare-and-set and the public key stored. The method is still unverified.
3. The person approves a first push with the number on the screen (mfa/push_approvals.py): that
   proves the phone works and registers the method.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from models import Authentication, Method, PushDevice
from models.states import AuthStatus
from mfa import audit
from mfa.authentications import can_continue, set_status
from mfa.compare_and_set import RowGone, compare_and_set
from mfa.device_signatures import SignedRequest, b64url_decode, public_key_from, verify_with
from mfa.errors import BadRequest, Gone, Unprocessable
from mfa.method_types import PushApp
from mfa.methods import require_registering
from mfa.services import Services

ENROLMENT_TTL = timedelta(minutes=10)
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")  # what secrets.token_urlsafe makes
MAX_DEVICES = 5  # phones per person: more is a sign of something wrong
NAME_LENGTH = 60
DEFAULT_NAME = "Phone"
TOO_MANY_DEVICES = f"You already have {MAX_DEVICES} phones set up for app approvals. Remove one first."
ENROLMENT_INVALID = ("This set-up link has been used or has expired. Ask for a new one: in security info, "
                     "choose to add a phone app again.")


@dataclass(frozen=True)
class Enrolment:
    method: Method
    url: str  # shown once, as a QR code and a link
    expires_at: datetime


def register_push(db: Session, svc: Services, auth_id: object, source_ip: str | None) -> Enrolment:
    auth = require_registering(db, svc, auth_id)
    set_status(db, svc, auth, AuthStatus.REGISTRATION_REQUIRED)
    user = auth.user
    if sum(m.type == PushApp.name for m in user.verified_methods()) >= MAX_DEVICES:
        raise Unprocessable(TOO_MANY_DEVICES, code="too_many_devices")
    # A set-up never finished is useless: forget it rather than pile them up (one at a time).
    db.execute(delete(Method).where(Method.user_id == user.id, Method.type == PushApp.name,
                                    Method.verified_at.is_(None)))
    db.expire(user, ["methods"])
    now = svc.clock.now()
    token = secrets.token_urlsafe(32)
    method = Method(user_id=user.id, type=PushApp.name, label=PushApp.label, created_at=now, is_default=False)
    db.add(method)
    db.flush()
    db.add(PushDevice(method_id=method.id, user_id=user.id, authentication_id=auth.id,
                      enrolment_token_hash=_token_hash(token),
                      enrolment_expires_at=now + ENROLMENT_TTL, created_at=now))
    db.flush()
    db.expire(user, ["methods"])
    audit.record(db, svc.clock, "method_enrolment_started", "pending", user=user, method=PushApp.label,
                 method_type=PushApp.name, source_ip=source_ip)
    return Enrolment(method, f"{svc.public_base_url}/app#enrol={token}", now + ENROLMENT_TTL)


def enrol_device(db: Session, svc: Services, request: SignedRequest, body: dict[str, object],
                 source_ip: str | None) -> PushDevice:
    """The phone's first request: spends the token, stores the public key it signed this request with."""
    token = body.get("token")
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise BadRequest("'token' must be the token from the set-up link.", field="token")
    public_key = public_key_from(body.get("public_key"))
    name = device_name(body.get("name"))
    subscription = checked_subscription(svc, body.get("subscription"))
    verify_with(public_key, request, svc)  # the device holds the private key of what it sends
    now = svc.clock.now()
    device = db.scalar(select(PushDevice).where(PushDevice.enrolment_token_hash == _token_hash(token)))
    if device is None or now >= device.enrolment_expires_at or not _set_up_still_open(db, svc, device):
        raise Gone(ENROLMENT_INVALID, code="enrolment_invalid")
    point = public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    sealed = svc.vault.encrypt(json.dumps(subscription)) if subscription else None
    try:
        spent = compare_and_set(db, device, where=[PushDevice.enrolment_token_hash == _token_hash(token)],
                                enrolment_token_hash=None, public_key=point, name=name, enrolled_at=now,
                                subscription_encrypted=sealed)
    except RowGone:  # a newer set-up replaced this one meanwhile
        spent = False
    if not spent:
        raise Gone(ENROLMENT_INVALID, code="enrolment_invalid")  # two phones raced with one link
    device.method.label = f"{PushApp.label}: {name}"[:64]
    audit.record(db, svc.clock, "push_device_enrolled", "ok", user=device.method.user, method=device.method.label,
                 method_type=PushApp.name, source_ip=source_ip,
                 detail="web push" if subscription else "no web push: the device polls")
    return device


def _set_up_still_open(db: Session, svc: Services, device: PushDevice) -> bool:
    """The sign-in or change that made the link can still finish: a link outlives nothing it came from."""
    auth = db.get(Authentication, device.authentication_id) if device.authentication_id else None
    return auth is not None and can_continue(auth, svc.clock.now())


def update_subscription(db: Session, svc: Services, device: PushDevice, subscription: object) -> None:
    checked = checked_subscription(svc, subscription)
    device.subscription_encrypted = svc.vault.encrypt(json.dumps(checked)) if checked else None


def device_name(value: object) -> str:
    """What the person called the phone: shown in their list, so printable text only."""
    if value is None or value == "":
        return DEFAULT_NAME
    if not isinstance(value, str):
        raise BadRequest("'name' must be text.", field="name")
    cleaned = " ".join("".join(c for c in value if unicodedata.category(c)[0] not in "CZ" or c == " ").split())
    if len(cleaned) > NAME_LENGTH:
        raise BadRequest(f"'name' must be at most {NAME_LENGTH} characters.", field="name")
    return cleaned or DEFAULT_NAME


def checked_subscription(svc: Services, value: object) -> dict[str, object] | None:
    """A browser's PushSubscription JSON, kept only when this server may post to its endpoint."""
    if value is None:
        return None
    keys = value.get("keys") if isinstance(value, dict) else None
    endpoint = value.get("endpoint") if isinstance(value, dict) else None
    if not (isinstance(endpoint, str) and len(endpoint) <= 1000 and isinstance(keys, dict)):
        raise BadRequest("'subscription' must be a push subscription (endpoint and keys).", field="subscription")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    try:
        valid = (isinstance(p256dh, str) and isinstance(auth, str) and len(p256dh) < 200 and len(auth) < 100
                 and len(b64url_decode(p256dh)) == 65 and len(b64url_decode(auth)) == 16)
    except ValueError:
        valid = False
    if not valid:
        raise BadRequest("'subscription' keys must be a P-256 key (p256dh) and a 16-byte secret (auth).",
                         field="subscription")
    if not svc.push.accepts_endpoint(endpoint):
        return None  # push off, or a push service not on WEBPUSH_ENDPOINT_HOSTS: the device polls
    return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
