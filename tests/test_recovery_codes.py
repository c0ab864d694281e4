"""Recovery codes (issue 14): ten single-use codes, ≥ 64 bits, stored hashed, typed where a code goes."""
from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from mfa import access_passes, change_notices, checks, recovery_codes, security_info
from mfa.errors import Conflict, MfaError
from mfa.recovery_codes import ALPHABET
from mfa.unit_of_work import use_case
from models import AuditEvent, Authentication, User
from models.recovery import RecoveryCode
from tests.helpers import pyotp_code, response_json, start_sign_in
from tests.test_races import all_at_once, postgres_only

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")


def codes_for(run, user) -> list[str]:
    return run(lambda db, svc: recovery_codes.generate(db, svc, db.get(User, user.id)))


def check(api, auth_id: str, code: str):
    return api.post(f"/authentications/{auth_id}/checks", {"code": code})


def signed_in_with(api, code: str, username: str = "alice"):
    auth = start_sign_in(api, username)
    return check(api, auth["id"], code)


def events(run, name: str) -> list[AuditEvent]:
    return run(lambda db, svc: list(db.scalars(select(AuditEvent).where(AuditEvent.event == name)
                                                .order_by(AuditEvent.at))))


def failures(run, user) -> int:
    """Failed passwords and codes counted against the person, from familiar or unfamiliar sources."""
    return run(lambda db, svc: (lambda u: u.failed_count + u.unfamiliar_failed_count)(db.get(User, user.id)))


def test_each_code_approves_one_sign_in_once_even_when_no_code_is_waiting(api, run, alice):
    codes = codes_for(run, alice)
    first = signed_in_with(api, codes[0])  # mfa_required: nothing texted, nothing waiting
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["status"] == "approved" and first.get_json()["reason"] == "recovery_code"
    again = signed_in_with(api, codes[0])
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_code"
    assert signed_in_with(api, codes[1]).get_json()["reason"] == "recovery_code"


def test_a_set_is_ten_codes_of_at_least_64_bits_stored_only_as_hashes(run, runtime, alice):
    codes = codes_for(run, alice)
    assert len(codes) == len(set(codes)) == 10
    assert all(SHAPE.match(code) for code in codes), codes
    bits = len(codes[0].replace("-", "")) * math.log2(len(ALPHABET))
    assert bits >= 64
    with runtime.engine.connect() as connection:
        rows = [" ".join(str(v) for v in row) for row in connection.execute(text("SELECT * FROM recovery_codes"))]
    assert len(rows) == 10
    for code in codes:
        assert not any(code in row or code.replace("-", "") in row for row in rows)


def test_regenerating_voids_the_old_set(api, run, alice):
    old = codes_for(run, alice)
    new = codes_for(run, alice)
    assert not set(old) & set(new)
    assert signed_in_with(api, old[3]).get_json()["error"] == "invalid_code"
    assert signed_in_with(api, new[3]).get_json()["status"] == "approved"
    generated = events(run, "recovery_codes_generated")
    assert [e.detail for e in generated] == ["10 new codes; 0 unused old code(s) voided",
                                             "10 new codes; 10 unused old code(s) voided"]


@pytest.mark.parametrize("typed", [
    lambda c: c.lower(),
    lambda c: c.replace("-", ""),
    lambda c: c.replace("-", " "),
    lambda c: " " + c + " ",
])
def test_case_spaces_and_hyphens_do_not_matter(api, run, alice, typed):
    code = codes_for(run, alice)[0]
    assert signed_in_with(api, typed(code)).get_json()["status"] == "approved"


def test_letters_that_look_like_digits_count_as_those_digits(api, run, alice, monkeypatch):
    made = iter(["10ABC-10ABC-10ABC", *(f"22222-22222-2222{c}" for c in "23456789A")])
    monkeypatch.setattr(recovery_codes, "random_groups", lambda length, group: next(made))
    run(lambda db, svc: recovery_codes.generate(db, svc, db.get(User, alice.id)))
    assert signed_in_with(api, "lOabc-IOabc-loABC").get_json()["status"] == "approved"


def test_a_wrong_recovery_code_counts_as_a_wrong_code(api, run, alice):
    codes_for(run, alice)
    auth = start_sign_in(api, "alice")
    refused = check(api, auth["id"], "ZZZZZ-ZZZZZ-ZZZZZ")
    assert refused.status_code == 400
    assert refused.get_json()["attempts_left"] == 4
    assert failures(run, alice) == 1  # the person's count too (mfa.accounts.record_failure)
    assert [e.reason for e in events(run, "code_check")] == ["wrong_recovery_code"]


def test_a_mistyped_code_counts_as_a_wrong_code_even_with_no_code_waiting(api, run, alice):
    codes = codes_for(run, alice)
    auth = start_sign_in(api, "alice", expect="mfa_required")
    refused = check(api, auth["id"], codes[0][:-1])  # one character short: no shape it could be
    assert refused.status_code == 400 and refused.get_json()["attempts_left"] == 4


def test_using_one_is_audited_with_how_many_are_left(api, run, alice):
    codes = codes_for(run, alice)
    signed_in_with(api, codes[0])
    signed_in_with(api, codes[1])
    assert [e.detail for e in events(run, "recovery_code_used")] == ["9 left", "8 left"]
    assert run(lambda db, svc: recovery_codes.remaining(db, alice.id)) == 8


def test_a_code_approves_a_sign_in_that_needs_registration_without_registering_anything(api, run, bob):
    codes = codes_for(run, bob)
    auth = start_sign_in(api, "bob", expect="registration_required")
    done = check(api, auth["id"], codes[0])
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "approved" and done.get_json()["reason"] == "recovery_code"
    assert run(lambda db, svc: db.get(User, bob.id).verified_methods()) == []
    assert start_sign_in(api, "bob")["status"] == "registration_required"  # next time: register


def test_a_code_works_while_a_text_is_pending(api, run, alice):
    from tests.fake_telephony import FakeTelephony, use_fake

    use_fake(api.client.application.extensions["mfa"], FakeTelephony())
    codes = codes_for(run, alice)
    auth = start_sign_in(api, "alice")
    method = next(m for m in auth["methods"] if m["type"] == "sms")
    assert api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method["id"]}).status_code == 201
    assert check(api, auth["id"], codes[0]).get_json()["status"] == "approved"


def test_a_change_to_security_info_does_not_take_a_recovery_code(run, alice):
    """A change proves the new method itself: a recovery code must not stand in for it."""
    codes = codes_for(run, alice)
    change = run(lambda db, svc: security_info.begin_change(db, svc, db.get(User, alice.id), None))

    def typed(db, svc):
        try:
            checks.check_code(db, svc, change.id, codes[0], None)
        except MfaError as refusal:
            return refusal.code
        return "approved"

    assert run(typed) != "approved"
    assert run(lambda db, svc: recovery_codes.remaining(db, alice.id)) == 10


def test_using_a_code_and_regenerating_text_the_persons_phone(api, run, runtime, alice):
    from tests.fake_telephony import FakeTelephony, use_fake
    from tests.personas import ALICE

    fake = FakeTelephony()
    use_fake(runtime, fake)
    codes = codes_for(run, alice)  # a first set: nothing they had changed
    assert change_notices.wait_for_sends() and fake.notices == []
    signed_in_with(api, codes[0])
    assert change_notices.wait_for_sends()
    assert fake.notices == [(ALICE, change_notices.RECOVERY_CODE_USED)]
    codes_for(run, alice)
    assert change_notices.wait_for_sends()
    assert fake.notices[-1] == (ALICE, change_notices.RECOVERY_CODES_REGENERATED)


# --- POST /api/v1/authentications/{id}/recovery-codes --------------------------------------------


def signed_in_with_app(api, clock, secret: str, username: str = "bob") -> str:
    """A sign-in approved (`verified`) by the person's authenticator app; its id."""
    auth = start_sign_in(api, username)
    done = check(api, auth["id"], pyotp_code(secret, clock.now()))
    assert done.get_json()["reason"] == "verified", done.get_json()
    return auth["id"]


def refused_codes(api, auth_id: str, error: str) -> None:
    refused = api.post(f"/authentications/{auth_id}/recovery-codes")
    assert refused.status_code == 409 and refused.get_json()["error"] == error, refused.get_json()


def test_the_api_gives_a_new_set_just_after_a_sign_in_with_the_app(api, run, clock, bob, totp_bob):
    old = codes_for(run, bob)
    given = api.post(f"/authentications/{signed_in_with_app(api, clock, totp_bob)}/recovery-codes")
    assert given.status_code == 201
    codes = response_json(given)["codes"]
    assert len(codes) == 10 and all(SHAPE.match(c) for c in codes)
    assert signed_in_with(api, old[1], "bob").get_json()["error"] == "invalid_code"
    assert signed_in_with(api, codes[0], "bob").get_json()["status"] == "approved"


def test_one_spent_recovery_code_buys_no_new_set(api, run, alice):
    old = codes_for(run, alice)
    auth = start_sign_in(api, "alice")
    assert check(api, auth["id"], old[0]).get_json()["reason"] == "recovery_code"
    refused_codes(api, auth["id"], "second_factor_needed")
    assert [e.reason for e in events(run, "recovery_codes_generated") if e.outcome == "refused"] == [
        "second_factor_needed"]
    assert "sign-in with your phone or app" in api.post(f"/authentications/{auth['id']}/recovery-codes"
                                                          ).get_json()["message"]
    assert signed_in_with(api, old[1]).get_json()["reason"] == "recovery_code"  # the person's set still works


def test_a_helpdesk_pass_buys_no_recovery_codes(api, run, alice):
    old = codes_for(run, alice)
    secret = run(lambda db, svc: access_passes.issue(db, svc, "alice"))
    auth = start_sign_in(api, "alice")
    assert check(api, auth["id"], secret).get_json()["reason"] == "access_pass"
    refused_codes(api, auth["id"], "second_factor_needed")
    assert signed_in_with(api, old[0]).get_json()["reason"] == "recovery_code"


def test_a_password_only_sign_in_buys_no_recovery_codes(api, run, dave):
    old = codes_for(run, dave)
    auth = start_sign_in(api, "dave", expect="approved")
    assert api.get(f"/authentications/{auth['id']}").get_json()["reason"] == "mfa_not_required"
    refused_codes(api, auth["id"], "second_factor_needed")
    assert run(lambda db, svc: recovery_codes.remaining(db, dave.id)) == 10
    assert run(lambda db, svc: recovery_codes.spend(db, svc, dave.id, recovery_codes.normalise(old[0]))) is not None


def test_a_remembered_browser_sign_in_buys_no_recovery_codes(run, clock, alice):
    """Only the pages approve for `remembered_browser`: the domain rule the API and pages share."""
    old = codes_for(run, alice)

    def remembered(db, svc):
        auth = Authentication(user_id=alice.id, status="approved", reason="remembered_browser",
                              created_at=svc.clock.now(), completed_at=svc.clock.now(),
                              expires_at=svc.clock.now() + timedelta(minutes=5))
        db.add(auth)
        db.flush()
        return auth.id

    auth_id = run(remembered)
    with pytest.raises(Conflict) as refused:
        run(lambda db, svc: recovery_codes.generate_after_sign_in(db, svc, auth_id))
    assert refused.value.code == "second_factor_needed"
    assert run(lambda db, svc: recovery_codes.spend(db, svc, alice.id, recovery_codes.normalise(old[0]))) is not None


@pytest.mark.parametrize("reason", ["verified", "access_pass", "recovery_code"])
def test_the_first_set_comes_only_from_a_registration_completed_with_a_method(run, bob, reason):
    def registered(db, svc):
        auth = Authentication(user_id=bob.id, status="approved", reason=reason, registering=True,
                              created_at=svc.clock.now(), completed_at=svc.clock.now(),
                              expires_at=svc.clock.now() + timedelta(minutes=5))
        db.add(auth)
        db.flush()
        return recovery_codes.generate_at_registration(db, svc, auth)

    if reason == "verified":
        assert len(run(registered)) == 10
    else:
        with pytest.raises(Conflict):
            run(registered)
        assert run(lambda db, svc: recovery_codes.has_codes(db, bob.id)) is False


@pytest.mark.parametrize("block", ["fraud", "lockout"])
def test_no_new_set_while_the_person_is_blocked_or_locked(api, run, clock, bob, totp_bob, block):
    old = codes_for(run, bob)
    auth_id = signed_in_with_app(api, clock, totp_bob)

    def block_bob(db, svc):
        user = db.get(User, bob.id)
        if block == "fraud":
            user.fraud_blocked_at = svc.clock.now()
        else:
            user.locked_until = svc.clock.now() + timedelta(minutes=15)
    run(block_bob)
    refused_codes(api, auth_id, "account_blocked" if block == "fraud" else "account_locked")
    assert run(lambda db, svc: recovery_codes.spend(db, svc, bob.id, recovery_codes.normalise(old[0]))) is not None


def test_the_api_refuses_codes_before_the_sign_in_is_approved(api, run, alice):
    auth = start_sign_in(api, "alice", expect="mfa_required")
    refused = api.post(f"/authentications/{auth['id']}/recovery-codes")
    assert refused.status_code == 409 and refused.get_json()["error"] == "not_approved"
    assert run(lambda db, svc: recovery_codes.remaining(db, alice.id)) == 0


def test_the_api_refuses_codes_ten_minutes_after_the_approval(api, run, clock, bob, totp_bob):
    auth_id = signed_in_with_app(api, clock, totp_bob)
    clock.advance(minutes=9, seconds=59)
    assert api.post(f"/authentications/{auth_id}/recovery-codes").status_code == 201
    clock.advance(1)
    refused_codes(api, auth_id, "too_old")


def test_another_api_key_gets_404_for_the_sign_in(api, run, client, alice):
    from mfa import api_keys
    from tests.helpers import ApiClient

    codes = codes_for(run, alice)
    auth = start_sign_in(api, "alice")
    check(api, auth["id"], codes[0])
    other = ApiClient(client, run(lambda db, svc: api_keys.create(db, svc, "other")))
    assert other.post(f"/authentications/{auth['id']}/recovery-codes").status_code == 404


# --- races ---------------------------------------------------------------------------------------


def checking(runtime, auth_id: str, code: str):
    """A job for all_at_once: check `code` on the sign-in `auth_id` in the job's own session."""
    def job(db) -> None:
        with use_case(db):
            checks.check_code(db, runtime.services, auth_id, code, "127.0.0.1")
    return job


@postgres_only
def test_twenty_requests_with_one_code_at_once_approve_exactly_once(runtime, run, alice):
    code = codes_for(run, alice)[0]
    sign_ins = [start_sign_in(run, "alice")["id"] for _ in range(20)]
    outcomes = all_at_once(runtime, [checking(runtime, auth_id, code) for auth_id in sign_ins])
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) <= {"ok", "invalid_code", "locked"}, outcomes
    approved = run(lambda db, svc: db.scalar(select(func.count()).select_from(Authentication)
                                             .where(Authentication.status == "approved")))
    assert approved == 1
    assert len(events(run, "recovery_code_used")) == 1
    assert run(lambda db, svc: db.scalar(select(func.count()).select_from(RecoveryCode)
                                         .where(RecoveryCode.used_at.is_not(None)))) == 1


@postgres_only
def test_twenty_requests_with_one_code_on_one_sign_in_approve_it_once(runtime, run, alice):
    code = codes_for(run, alice)[0]
    auth_id = start_sign_in(run, "alice")["id"]
    outcomes = all_at_once(runtime, [checking(runtime, auth_id, code) for _ in range(20)])
    assert outcomes.count("ok") == 1, outcomes
    assert len(events(run, "recovery_code_used")) == 1
    assert run(lambda db, svc: recovery_codes.remaining(db, alice.id)) == 9


def test_after_a_code_is_used_no_new_set_for_a_day_even_from_the_app(api, run, clock, bob, totp_bob):
    """One seen code must not buy the whole set: with it someone could add their own app, sign in with
    that and void the person's other codes. For a day after a code or pass is used, no new set."""
    old = codes_for(run, bob)
    assert signed_in_with(api, old[0], "bob").get_json()["reason"] == "recovery_code"
    clock.advance(hours=23, minutes=59)
    refused = api.post(f"/authentications/{signed_in_with_app(api, clock, totp_bob)}/recovery-codes")
    assert (refused.status_code, refused.get_json()["error"]) == (409, "backup_used_recently")
    assert "Your other unused codes still work" in refused.get_json()["message"]
    assert signed_in_with(api, old[1], "bob").get_json()["reason"] == "recovery_code"  # the set is whole
    clock.advance(hours=24, seconds=1)  # a day after the last code used
    given = api.post(f"/authentications/{signed_in_with_app(api, clock, totp_bob)}/recovery-codes")
    assert given.status_code == 201
    assert signed_in_with(api, old[2], "bob").get_json()["error"] == "invalid_code"  # the old set is void


def test_a_pass_used_also_holds_new_codes_back_for_a_day(api, run, clock, bob, totp_bob):
    secret = run(lambda db, svc: access_passes.issue(db, svc, "bob"))
    assert signed_in_with(api, secret, "bob").get_json()["reason"] == "access_pass"
    refused = api.post(f"/authentications/{signed_in_with_app(api, clock, totp_bob)}/recovery-codes")
    assert refused.get_json()["error"] == "backup_used_recently"
