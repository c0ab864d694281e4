"""Every sign-in, check, lockout, registration and method change leaves an audit row."""
from __future__ import annotations

from sqlalchemy import select

from models import AuditEvent
from tests.helpers import enrol_app, pyotp_code, start_sign_in


def events(session):
    return [(e.event, e.outcome, e.reason) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_a_registration_and_sign_in_are_recorded_with_source_and_method(api, bob, clock, session):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    wrong = "000000" if pyotp_code(secret, clock.now()) != "000000" else "111111"
    api.post(f"/authentications/{auth['id']}/checks", {"code": wrong})
    api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    recorded = events(session)
    assert ("user_created", "ok", None) in recorded
    assert ("method_enrolment_started", "pending", None) in recorded
    assert ("method_registered", "ok", None) in recorded
    assert ("code_check", "failed", "wrong_code") in recorded
    assert recorded.count(("sign_in", "approved", "verified")) == 2
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last.username == "bob" and last.method == "Authenticator app"
    assert last.source_ip == "127.0.0.1" and last.at == clock.now()


def test_policy_approvals_record_why(api, dave, session):
    start_sign_in(api, "dave")
    row = session.scalars(select(AuditEvent).where(AuditEvent.event == "sign_in")).one()
    assert row.reason == "mfa_not_required"
    assert row.detail == "role user does not require MFA"


def test_replayed_codes_are_told_apart_in_the_audit_log_only(api, bob, clock, session):
    secret = enrol_app(api, clock)
    code = pyotp_code(secret, clock.now())
    first = start_sign_in(api)
    api.post(f"/authentications/{first['id']}/checks", {"code": code})
    second = start_sign_in(api)
    replay = api.post(f"/authentications/{second['id']}/checks", {"code": code})
    wrong = api.post(f"/authentications/{second['id']}/checks", {"code": "000000" if code != "000000" else "111111"})
    assert replay.json["message"] == wrong.json["message"]
    assert ("code_check", "failed", "replayed_code") in events(session)
