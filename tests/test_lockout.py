"""Ten consecutive failures lock an account for 15 minutes or until `users unlock`.

All from one address (the test client's): smart lockout by source is tested in test_smart_lockout.py."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from mfa import accounts
from models import AuditEvent
from tests.conftest import PASSWORD
from tests.helpers import enrol_app, pyotp_code, start_sign_in


@pytest.fixture
def app_config(app_config):
    """The per-person-and-address rate limit (10 a minute, web/rate_limits.py) would answer the
    11th attempt with 429 before the lockout could: lifted here, where the lockout is under test."""
    return {**app_config, "RATE_LIMIT_SIGN_INS_PER_PERSON": "1000"}


def fail_password(api, times, username="bob"):
    return [api.post("/authentications", {"username": username, "password": "wrong password!"})
            for _ in range(times)]


def test_ten_wrong_passwords_lock_the_account(api, bob):
    responses = fail_password(api, 10)
    assert [r.status_code for r in responses] == [401] * 9 + [423]
    locked = api.post("/authentications", {"username": "bob", "password": PASSWORD})
    assert locked.status_code == 423 and locked.json["error"] == "locked"


def test_a_locked_account_does_not_reveal_whether_the_password_was_right(api, bob):
    fail_password(api, 10)
    right = api.post("/authentications", {"username": "bob", "password": PASSWORD})
    wrong = api.post("/authentications", {"username": "bob", "password": "still wrong!!"})
    assert right.status_code == wrong.status_code == 423
    assert right.json == wrong.json


def test_the_lock_lifts_after_fifteen_minutes(api, bob, clock):
    fail_password(api, 10)
    clock.advance(minutes=14, seconds=59)
    assert api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 423
    clock.advance(seconds=1)
    assert api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 201


def test_users_unlock_lifts_the_lock_at_once(api, bob, run):
    fail_password(api, 10)
    run(lambda db, svc: accounts.unlock(db, svc, "bob"))
    assert api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 201


def test_wrong_codes_count_towards_the_same_lockout(api, bob, clock):
    secret = enrol_app(api, clock)
    fail_password(api, 6)
    auth = start_sign_in(api)
    wrong = "000000" if pyotp_code(secret, clock.now()) != "000000" else "111111"
    codes = [api.post(f"/authentications/{auth['id']}/checks", {"code": wrong}) for _ in range(4)]
    assert [r.status_code for r in codes] == [400, 400, 400, 423]
    assert codes[-1].json["error"] == "locked"
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "locked"


def test_a_right_password_alone_does_not_reset_the_count_while_the_second_factor_is_owed(api, bob, clock):
    fail_password(api, 9)
    assert api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 201
    assert fail_password(api, 1)[0].status_code == 423


def test_a_completed_sign_in_resets_the_count_after_the_second_factor(api, bob, clock):
    secret = enrol_app(api, clock)
    fail_password(api, 9)
    auth = start_sign_in(api)
    api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert [r.status_code for r in fail_password(api, 9)] == [401] * 9


def test_lockouts_are_audited(api, bob, session):
    fail_password(api, 10)
    events = session.scalars(select(AuditEvent).where(AuditEvent.event == "account_locked")).all()
    assert len(events) == 1 and events[0].username == "bob"


def test_unknown_usernames_get_the_same_answer_as_wrong_passwords(api, bob):
    unknown = api.post("/authentications", {"username": "nobody", "password": PASSWORD})
    wrong = api.post("/authentications", {"username": "bob", "password": "wrong password!"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json == wrong.json
