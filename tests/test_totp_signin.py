"""A relying application takes a person from password to approved with an app code."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.conftest import PASSWORD
from tests.helpers import oathtool_code, pyotp_code, secret_from_uri


def sign_in(api, username="bob", password=PASSWORD):
    response = api.post("/authentications", {"username": username, "password": password})
    assert response.status_code == 201, response.json
    return response.json


def enrol_app(api, clock, username="bob"):
    """Register an authenticator app through the API; returns its secret."""
    auth = sign_in(api, username)
    uri = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"}).json["otpauth_uri"]
    secret = secret_from_uri(uri)
    done = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert done.json["status"] == "approved"
    clock.advance(90)  # later sign-ins use time steps the enrolment did not
    return secret


def test_first_sign_in_asks_an_administrator_to_register(api, bob):
    auth = sign_in(api)
    assert auth["status"] == "registration_required"
    assert auth["methods"] == []
    assert auth["expires_at"].endswith("Z")


def test_registration_returns_an_otpauth_uri_authenticator_apps_accept(api, bob):
    auth = sign_in(api)
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
    auth = sign_in(api)
    uri = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"}).json["otpauth_uri"]
    code = oathtool_code(secret_from_uri(uri), clock.now())
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert response.status_code == 200
    assert response.json["status"] == "approved"
    [method] = response.json["methods"]
    assert method["type"] == "totp" and method["default"] is True


def test_a_registered_person_signs_in_with_an_oathtool_code(api, bob, clock):
    secret = enrol_app(api, clock)
    auth = sign_in(api)
    assert auth["status"] == "mfa_required"
    assert [m["type"] for m in auth["methods"]] == ["totp"]
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": oathtool_code(secret, clock.now())})
    assert response.json["status"] == "approved"
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "approved"


@pytest.mark.parametrize("offset, accepted", [(-60, False), (-30, True), (0, True), (30, True), (60, False)])
def test_codes_one_step_either_side_are_accepted(api, bob, clock, offset, accepted):
    secret = enrol_app(api, clock)
    auth = sign_in(api)
    code = pyotp_code(secret, clock.now() + timedelta(seconds=offset))
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert (response.status_code == 200) is accepted


def test_a_code_already_used_is_refused(api, bob, clock):
    secret = enrol_app(api, clock)
    first = sign_in(api)
    code = pyotp_code(secret, clock.now())
    assert api.post(f"/authentications/{first['id']}/checks", {"code": code}).status_code == 200
    second = sign_in(api)
    replay = api.post(f"/authentications/{second['id']}/checks", {"code": code})
    assert replay.status_code == 400
    assert replay.json["error"] == "invalid_code"
    assert replay.json["attempts_left"] == 4


def test_five_wrong_codes_deny_the_sign_in(api, bob, clock):
    secret = enrol_app(api, clock)
    auth = sign_in(api)
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
    auth = sign_in(api)
    clock.advance(minutes=10)
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "expired"
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert response.status_code == 409 and response.json["error"] == "not_pending"


def test_policy_needs_no_second_factor_outside_the_required_roles_and_regions(api, dave):
    auth = sign_in(api, "dave")
    assert (auth["status"], auth["reason"]) == ("approved", "mfa_not_required")


def test_an_app_enrolment_never_finished_does_not_count_as_registered(api, bob):
    auth = sign_in(api)
    api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"})
    assert sign_in(api)["status"] == "registration_required"


def test_challenges_for_an_app_are_not_needed(api, bob, clock):
    enrol_app(api, clock)
    auth = sign_in(api)
    response = api.post(f"/authentications/{auth['id']}/challenges", {"method_id": auth["methods"][0]["id"]})
    assert response.status_code == 422 and response.json["error"] == "no_challenge_needed"


def test_registration_is_refused_once_a_person_is_registered(api, bob, clock):
    enrol_app(api, clock)
    auth = sign_in(api)
    response = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"})
    assert response.status_code == 409 and response.json["error"] == "not_pending"
