"""A relying application takes a person from password to approved with an app code."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.helpers import enrol_app, oathtool_code, pyotp_code, secret_from_uri, start_sign_in


def test_first_sign_in_asks_an_administrator_to_register(api, bob):
    auth = start_sign_in(api)
    assert auth["status"] == "registration_required"
    assert auth["methods"] == []
    assert auth["expires_at"].endswith("Z")


def test_registration_returns_an_otpauth_uri_authenticator_apps_accept(api, bob):
    auth = start_sign_in(api)
    response = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"})
    assert response.status_code == 201
    uri = urlsplit(response.json["otpauth_uri"])
    query = {k: v[0] for k, v in parse_qs(uri.query).items()}
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert unquote(uri.path) == "/Secure Sign-in:bob"
    assert query["issuer"] == "Secure Sign-in"
    assert len(query["secret"]) == 32
    # pyotp leaves out parameters equal to the defaults apps assume (SHA1, 6 digits, 30 s).
    assert query.get("algorithm", "SHA1") == "SHA1"
    assert query.get("digits", "6") == "6" and query.get("period", "30") == "30"


def test_a_code_from_oathtool_activates_the_app_and_approves(api, bob, clock):
    auth = start_sign_in(api)
    uri = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"}).json["otpauth_uri"]
    code = oathtool_code(secret_from_uri(uri), clock.now())
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert response.status_code == 200
    assert response.json["status"] == "approved"
    [method] = response.json["methods"]
    assert method["type"] == "totp" and method["default"] is True


def test_a_registered_person_signs_in_with_an_oathtool_code(api, bob, clock):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    assert auth["status"] == "mfa_required"
    assert [m["type"] for m in auth["methods"]] == ["totp"]
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": oathtool_code(secret, clock.now())})
    assert response.json["status"] == "approved"
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "approved"


@pytest.mark.parametrize("offset, accepted", [(-60, False), (-30, True), (0, True), (30, True), (60, False)])
def test_codes_one_step_either_side_are_accepted(api, bob, clock, offset, accepted):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    code = pyotp_code(secret, clock.now() + timedelta(seconds=offset))
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert (response.status_code == 200) is accepted


def test_a_code_already_used_is_refused(api, bob, clock):
    secret = enrol_app(api, clock)
    first = start_sign_in(api)
    code = pyotp_code(secret, clock.now())
    assert api.post(f"/authentications/{first['id']}/checks", {"code": code}).status_code == 200
    second = start_sign_in(api)
    replay = api.post(f"/authentications/{second['id']}/checks", {"code": code})
    assert replay.status_code == 400
    assert replay.json["error"] == "invalid_code"
    assert replay.json["attempts_left"] == 4


def test_five_wrong_codes_deny_the_sign_in(api, bob, clock):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    wrong = "000000" if pyotp_code(secret, clock.now()) != "000000" else "111111"
    for left in (4, 3, 2, 1):
        response = api.post(f"/authentications/{auth['id']}/checks", {"code": wrong})
        assert response.status_code == 400 and response.json["attempts_left"] == left
    fifth = api.post(f"/authentications/{auth['id']}/checks", {"code": wrong})
    assert fifth.status_code == 423 and fifth.json["error"] == "too_many_attempts"
    state = api.get(f"/authentications/{auth['id']}").json
    assert (state["status"], state["reason"]) == ("denied", "too_many_attempts")
    # Even the right code cannot revive it.
    late = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert late.status_code == 423


def test_a_sign_in_expires_after_ten_minutes(api, bob, clock):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    clock.advance(minutes=10)
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "expired"
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert response.status_code == 409 and response.json["error"] == "not_pending"


def test_policy_needs_no_second_factor_outside_the_required_roles_and_regions(api, dave):
    auth = start_sign_in(api, "dave")
    assert (auth["status"], auth["reason"]) == ("approved", "mfa_not_required")


def test_an_app_enrolment_never_finished_does_not_count_as_registered(api, bob):
    auth = start_sign_in(api)
    api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"})
    assert start_sign_in(api)["status"] == "registration_required"


def test_challenges_for_an_app_are_not_needed(api, bob, clock):
    enrol_app(api, clock)
    auth = start_sign_in(api)
    response = api.post(f"/authentications/{auth['id']}/challenges", {"method_id": auth["methods"][0]["id"]})
    assert response.status_code == 422 and response.json["error"] == "no_challenge_needed"


def test_registration_is_refused_once_a_person_is_registered(api, bob, clock):
    enrol_app(api, clock)
    auth = start_sign_in(api)
    response = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"})
    assert response.status_code == 409 and response.json["error"] == "not_pending"


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "é", "１２３４５６", "12 34 56x"])
def test_codes_that_are_not_ascii_digits_are_wrong_codes_not_crashes(api, bob, clock, code):
    enrol_app(api, clock)
    auth = start_sign_in(api)
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert response.status_code == 400 and response.json["error"] == "invalid_code"


def test_a_stored_method_of_a_type_this_server_does_not_offer_leaves_the_app_working(api, bob, totp_bob, clock, run):
    """A method row of a type a later release may add (here "fax") is passed over, not a 422 for every app code."""
    from models import Method

    def add_push(db, svc):
        db.add(Method(user_id=bob.id, type="fax", label="Phone", created_at=clock.now(), verified_at=clock.now()))

    run(add_push)
    auth = start_sign_in(api, expect="mfa_required")
    checked = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(totp_bob, clock.now())})
    assert checked.status_code == 200 and checked.get_json()["status"] == "approved"
