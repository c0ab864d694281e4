"""App passwords for legacy mail programs."""
from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from mfa import app_passwords
from mfa.errors import Conflict
from models import AppPassword


@pytest.fixture
def created(run, bob):
    return run(lambda db, svc: app_passwords.create(db, svc, bob, "Outlook 2013"))


def test_app_passwords_are_sixteen_letters_in_groups_of_four(created):
    _, plaintext = created
    assert re.fullmatch(r"[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}", plaintext)


def test_app_passwords_are_stored_only_as_the_unkeyed_sha256_of_their_sixteen_letters(created, session):
    # By design (README "Secrets at rest"): 75 random bits need no key, unlike a phone number or a code.
    _, plaintext = created
    row = session.scalars(select(AppPassword)).one()
    assert row.secret_hash == hashlib.sha256(plaintext.replace(" ", "").encode()).hexdigest()


@pytest.mark.parametrize("typed", [
    lambda p: p, lambda p: p.replace(" ", ""), lambda p: p.upper(), lambda p: p.replace(" ", "-"),
])
def test_a_legacy_gateway_can_verify_an_app_password(api, created, typed, session, clock):
    _, plaintext = created
    response = api.post("/app-passwords/verify", {"username": "bob", "app_password": typed(plaintext)})
    assert response.status_code == 200 and response.json == {"valid": True}
    assert session.scalars(select(AppPassword)).one().last_used_at == clock.now()


@pytest.mark.parametrize("body", [
    {"username": "bob", "app_password": "abcd efgh ijkl mnop"},
    {"username": "nobody", "app_password": "abcd efgh ijkl mnop"},
])
def test_wrong_app_passwords_get_401(api, created, body):
    response = api.post("/app-passwords/verify", body)
    assert response.status_code == 401 and response.json["error"] == "invalid_credentials"


def test_an_app_password_belongs_to_one_person(api, created, carol):
    _, plaintext = created
    response = api.post("/app-passwords/verify", {"username": "carol", "app_password": plaintext})
    assert response.status_code == 401


def test_a_revoked_app_password_stops_working(api, created, run, bob):
    row, plaintext = created
    run(lambda db, svc: app_passwords.revoke(db, svc, db.merge(bob), row.id))
    response = api.post("/app-passwords/verify", {"username": "bob", "app_password": plaintext})
    assert response.status_code == 401


def test_an_app_password_never_satisfies_a_sign_in(api, created):
    _, plaintext = created
    response = api.post("/authentications", {"username": "bob", "password": plaintext})
    assert response.status_code == 401


def test_at_most_forty_app_passwords_per_person(run, bob):
    for n in range(40):
        run(lambda db, svc, name=f"app {n}": app_passwords.create(db, svc, bob, name))
    with pytest.raises(Conflict):
        run(lambda db, svc: app_passwords.create(db, svc, bob, "one too many"))


def test_malformed_verify_bodies_get_400(api):
    assert api.post("/app-passwords/verify", {"username": "bob"}).status_code == 400
