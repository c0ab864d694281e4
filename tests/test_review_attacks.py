"""What an attacker's review of the sign-in integrity work found, each now refused.

- a registration sign-in opened before the person registered, finished afterwards;
- an approval not yet turned into a session, used after a lockout, a fraud block or a reset;
- a cookie held before the password step (planted or read) following the sign-in that came after.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from mfa import lockout
from models import Method
from tests.browser_steps import app_step, cookie, password_step, post_form, replay, signed_in
from tests.helpers import add_phone, pyotp_code, secret_from_uri, start_sign_in
from tests.personas import MOBILE


def test_a_registration_sign_in_opened_before_the_person_registered_cannot_finish_afterwards(api, run, bob, clock):
    early = start_sign_in(api)  # someone who knows only the password
    assert early["status"] == "registration_required"
    uri = api.post(f"/authentications/{early['id']}/registrations", {"type": "totp"}).json["otpauth_uri"]
    add_phone(run, bob, MOBILE, types=("sms",))  # meanwhile the person registers their phone
    late = api.post(f"/authentications/{early['id']}/checks",
                    {"code": pyotp_code(secret_from_uri(uri), clock.now())})
    assert late.status_code == 409 and late.json["error"] == "not_pending"
    shown = api.get(f"/authentications/{early['id']}").json
    assert (shown["status"], shown["reason"]) == ("denied", "registered_meanwhile")
    verified = run(lambda db, svc: db.scalars(select(Method.type).where(
        Method.user_id == bob.id, Method.verified_at.is_not(None))).all())
    assert verified == ["sms"]  # the early sign-in's authenticator was never added


def test_a_first_registration_still_finishes_when_nothing_was_registered_meanwhile(api, run, bob, clock):
    auth = start_sign_in(api)
    uri = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"}).json["otpauth_uri"]
    done = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret_from_uri(uri), clock.now())})
    assert done.status_code == 200 and done.json["status"] == "approved"


def _lock_out(app, api):
    """Wrong passwords on the sign-in page from bob's familiar address: the lockout that ends his
    sessions (through the API they would lock only unfamiliar sources, docs/lockout.md)."""
    for _ in range(lockout.threshold(app.extensions["mfa"].services)):
        post_form(app.test_client(), "/sign-in", {"username": "bob", "password": "wrong"})


def _reset(app, api):
    assert app.test_cli_runner().invoke(args=["users", "reset-methods", "bob"]).exit_code == 0


def _block(app, api):
    """What a 0# on another call does to the person (mfa/calls._report_fraud)."""
    from mfa import browser_sessions
    from models import User

    rt = app.extensions["mfa"]
    with rt.sessions() as db:
        user = db.scalar(select(User).where(User.username == "bob"))
        user.fraud_blocked_at = rt.services.clock.now()
        browser_sessions.end_all_for_user(db, user.id)
        db.commit()


@pytest.mark.parametrize("event", [_lock_out, _reset, _block], ids=["lockout", "reset-methods", "fraud-block"])
def test_an_approval_not_yet_turned_into_a_session_opens_nothing_after(app, client, api, totp_bob, clock, event):
    password_step(client, "bob")
    app_step(client, totp_bob, clock)  # approved, but the browser has not come back to /verify yet
    event(app, api)
    response = client.get("/verify")
    assert response.status_code in (302, 409)
    assert not signed_in(client)


def test_an_approval_is_refused_when_the_account_is_blocked_even_if_nothing_ended_it(
        app, client, api, run, totp_bob, clock):
    from models import User

    password_step(client, "bob")
    app_step(client, totp_bob, clock)
    run(lambda db, svc: db.execute(update(User).where(User.username == "bob")
                                   .values(fraud_blocked_at=svc.clock.now())))
    assert client.get("/verify").status_code == 423  # AccountLocked, as the API answers it
    assert not signed_in(client)


def test_a_cookie_held_before_the_password_step_does_not_follow_the_sign_in(app, client, totp_bob, clock):
    client.get("/sign-in")
    planted = cookie(client)  # e.g. set by an attacker before the person signs in
    assert planted
    password_step(client, "bob")
    assert cookie(client) != planted  # the password step moved the flow to a new id
    app_step(client, totp_bob, clock)
    attacker = replay(planted, app)
    attacker.get("/verify")
    assert not signed_in(attacker)
    assert client.get("/verify").status_code == 302 and signed_in(client)


def test_a_registration_call_answered_after_the_person_registered_approves_nothing(live, phones, run, bob):
    early = start_sign_in(live.api)
    response = live.api.post(f"/authentications/{early['id']}/registrations", {
        "type": "phone", "number": "07400 555666", "kind": "mobile", "delivery": "voice"})
    assert response.status_code == 201
    phones.wait_idle()
    add_phone(run, bob, MOBILE, types=("sms",))  # the person registers another phone meanwhile
    sid = phones.calls(to="+447400555666")[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    shown = live.api.get(f"/authentications/{early['id']}").json()
    assert (shown["status"], shown["reason"]) == ("denied", "registered_meanwhile")
    verified = run(lambda db, svc: db.scalars(select(Method.type).where(
        Method.user_id == bob.id, Method.verified_at.is_not(None))).all())
    assert verified == ["sms"]  # only the person's own phone: the early call's number was never added
