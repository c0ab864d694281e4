"""Temporary access passes (issue 14): the helpdesk's way back in after a lost phone."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from mfa import change_notices
from models import AuditEvent, Method, User
from models.recovery import AccessPass
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import post_form, start_sign_in
from tests.browser_steps import password_step
from tests.personas import ALICE

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")
NEW_MOBILE = "+447400999888"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


def issue(cli, *args: str) -> str:
    result = cli("users", "issue-pass", *args)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def with_pass(api, secret: str, username: str = "alice"):
    auth = start_sign_in(api, username)
    return api.post(f"/authentications/{auth['id']}/checks", {"code": secret})


def failures(run, user) -> int:
    """Failed passwords and codes counted against the person, from familiar or unfamiliar sources."""
    return run(lambda db, svc: (lambda u: u.failed_count + u.unfamiliar_failed_count)(db.get(User, user.id)))


def test_the_command_prints_the_pass_as_its_last_line_and_it_is_stored_hashed(cli, runtime, alice):
    secret = issue(cli, "alice")
    assert SHAPE.match(secret), secret
    with runtime.engine.connect() as connection:
        rows = [" ".join(str(v) for v in row) for row in connection.execute(text("SELECT * FROM access_passes"))]
    assert len(rows) == 1
    assert secret not in rows[0] and secret.replace("-", "") not in rows[0]


def test_a_pass_approves_a_sign_in_once_by_default(cli, api, alice):
    secret = issue(cli, "alice")
    first = with_pass(api, secret)
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["status"] == "approved" and first.get_json()["reason"] == "access_pass"
    again = with_pass(api, secret)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_code"


def test_a_pass_works_for_its_uses_and_no_more(cli, api, alice):
    secret = issue(cli, "alice", "--uses", "3")
    for _ in range(3):
        assert with_pass(api, secret.lower()).get_json()["status"] == "approved"
    assert with_pass(api, secret).get_json()["error"] == "invalid_code"


def test_a_pass_works_for_its_minutes_and_no_longer(cli, api, clock, alice):
    secret = issue(cli, "alice", "--minutes", "30", "--uses", "2")
    clock.advance(minutes=29, seconds=59)
    assert with_pass(api, secret).get_json()["status"] == "approved"
    clock.advance(1)
    refused = with_pass(api, secret)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_code"


def test_users_show_says_whether_a_pass_works_and_how_many_codes_are_left(cli, alice):
    assert "access pass: none working" in cli("users", "show", "alice").output
    issue(cli, "alice", "--uses", "2")
    shown = cli("users", "show", "alice").output
    assert "access pass: until 2026-11-28 10:00 UTC, 2 use(s) left" in shown
    assert "recovery codes: 0 left" in shown


def test_a_new_pass_revokes_the_older_one(cli, api, alice):
    old = issue(cli, "alice", "--uses", "5")
    new = issue(cli, "alice")
    assert with_pass(api, old).get_json()["error"] == "invalid_code"
    assert with_pass(api, new).get_json()["status"] == "approved"


def test_an_expired_pass_counts_as_a_wrong_code(cli, api, run, clock, alice):
    secret = issue(cli, "alice", "--minutes", "10")
    clock.advance(minutes=10)
    auth = start_sign_in(api, "alice")
    refused = api.post(f"/authentications/{auth['id']}/checks", {"code": secret})
    assert refused.get_json()["attempts_left"] == 4
    assert failures(run, alice) == 1  # the person's count too (mfa.accounts.record_failure)


def test_issuing_and_using_a_pass_are_audited(cli, api, run, alice):
    secret = issue(cli, "alice", "--uses", "2")
    with_pass(api, secret)
    rows = run(lambda db, svc: [(e.event, e.detail) for e in db.scalars(
        select(AuditEvent).where(AuditEvent.event.like("access_pass%")).order_by(AuditEvent.at, AuditEvent.id))])
    assert [event for event, _ in rows] == ["access_pass_issued", "access_pass_used"]
    assert "60 minutes, 2 use(s)" in rows[0][1]
    assert rows[1][1] == "1 use(s) left"
    assert secret not in str(rows)


def test_using_a_pass_texts_the_persons_phone(cli, api, runtime, alice):
    fake = FakeTelephony()
    use_fake(runtime, fake)
    with_pass(api, issue(cli, "alice"))
    assert change_notices.wait_for_sends()
    assert fake.notices == [(ALICE, change_notices.ACCESS_PASS_USED)]


def test_a_pass_approves_while_registration_is_required(cli, api, bob):
    secret = issue(cli, "bob")
    auth = start_sign_in(api, "bob", expect="registration_required")
    done = api.post(f"/authentications/{auth['id']}/checks", {"code": secret})
    assert done.get_json()["status"] == "approved" and done.get_json()["reason"] == "access_pass"


@pytest.mark.parametrize("args, message", [
    (["nobody"], "No user called 'nobody'"),
    (["alice", "--minutes", "9"], "from 10 to 480 minutes"),
    (["alice", "--minutes", "481"], "from 10 to 480 minutes"),
    (["alice", "--minutes", "an hour"], "--minutes must be a whole number"),
    (["alice", "--uses", "0"], "from 1 to 10 times"),
    (["alice", "--uses", "11"], "from 1 to 10 times"),
    (["alice", "--uses", "-1"], "--uses must be a whole number"),
    (["alice", "--minutes", "9" * 5000], "--minutes must be a whole number"),  # int() would raise past 4300 digits
])
def test_bad_input_exits_non_zero_with_one_line(cli, run, alice, args, message):
    result = cli("users", "issue-pass", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert run(lambda db, svc: db.scalars(select(AccessPass)).all()) == []


def test_someone_who_lost_their_phone_signs_in_with_a_pass_and_registers_a_new_one(cli, client, runtime, run, alice):
    """alice's only phone is lost: the helpdesk issues a pass; she signs in on the pages with it,
    and adds her new phone in security info, which verifies the new phone by text."""
    fake = FakeTelephony()
    use_fake(runtime, fake)
    secret = issue(cli, "alice")
    assert password_step(client, "alice").headers["Location"].endswith("/verify")
    assert len(fake.calls) == 1  # to the lost phone (its default method): nobody will answer
    post_form(client, "/verify/code", {"code": secret}, token_from="/verify")
    finished = client.get("/verify")
    assert finished.status_code == 302
    assert client.get("/account").status_code == 200
    added = post_form(client, "/security-info/phone/mobile", {}, token_from="/security-info")
    assert added.headers["Location"].endswith("/register/phone/mobile")
    sent = post_form(client, "/register/phone/mobile", {"number": NEW_MOBILE, "delivery": "sms"})
    assert sent.headers["Location"].endswith("/verify"), sent.get_data(as_text=True)
    to, code = fake.texts[-1]
    assert to == NEW_MOBILE
    post_form(client, "/verify/code", {"code": code}, token_from="/verify")
    assert client.get("/verify").headers["Location"].endswith("/security-info")
    numbers = run(lambda db, svc: sorted(svc.vault.decrypt(m.phone_encrypted) for m in db.scalars(
        select(Method).where(Method.user_id == alice.id, Method.verified_at.is_not(None)))))
    assert NEW_MOBILE in numbers
