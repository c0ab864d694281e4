"""The command line of CONTRACT §2: exit 0 on success, non-zero with one line on error."""
from __future__ import annotations

import pytest

from app import create_app
from mfa import api_keys
from tests.conftest import PASSWORD
from tests.helpers import enrol_app, start_sign_in


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args, **kw: runner.invoke(args=list(args), **kw)


def test_users_create_then_show(cli):
    created = cli("users", "create", "Erin", "--password", PASSWORD, "--role", "admin", "--region", "wales", "--hybrid")
    assert created.exit_code == 0, created.output
    shown = cli("users", "show", "erin")
    assert shown.exit_code == 0
    assert "role:      admin" in shown.output and "region:    wales" in shown.output
    assert "hybrid:    yes" in shown.output and "MFA:       not required" in shown.output


def test_users_create_prompts_for_the_password_when_absent(cli, api):
    result = cli("users", "create", "frank", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert api.post("/authentications", {"username": "frank", "password": PASSWORD}).status_code == 201


@pytest.mark.parametrize("args, message", [
    (["users", "create", "bob", "--password", PASSWORD], "already exists"),
    (["users", "create", "x y", "--password", PASSWORD], "Usernames are"),
    (["users", "create", "gina", "--password", "short"], "at least 10"),
    (["users", "create", "gina", "--password", PASSWORD, "--region", "England!"], "Regions are"),
    (["users", "create", "gina", "--password", PASSWORD, "--role", "king"], "Invalid value"),
    (["users", "show", "nobody"], "No user called"),
    (["users", "unlock", "nobody"], "No user called"),
    (["users", "reset-methods", "nobody"], "No user called"),
])
def test_bad_input_exits_non_zero_with_a_message(cli, bob, args, message):
    result = cli(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_apikeys_create_prints_a_working_key_as_the_last_line(cli, client, bob):
    result = cli("apikeys", "create", "mail-gateway")
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    response = client.post("/api/v1/authentications", json={"username": "bob", "password": PASSWORD},
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201


def test_apikeys_names_are_unique(cli):
    assert cli("apikeys", "create", "portal").exit_code == 0
    again = cli("apikeys", "create", "portal")
    assert again.exit_code != 0 and "already exists" in again.output


def test_reset_methods_sends_a_person_back_to_registration(cli, api, bob, clock):
    enrol_app(api, clock)
    assert "totp" in cli("users", "show", "bob").output
    result = cli("users", "reset-methods", "bob")
    assert result.exit_code == 0 and "Removed 1" in result.output
    assert start_sign_in(api)["status"] == "registration_required"


def test_unlock_reports_success(cli, api, bob):
    for _ in range(10):
        api.post("/authentications", {"username": "bob", "password": "wrong password!"})
    assert "locked until" in cli("users", "show", "bob").output
    result = cli("users", "unlock", "bob")
    assert result.exit_code == 0 and "Unlocked bob" in result.output
    assert "status:    active" in cli("users", "show", "bob").output


def test_db_upgrade_is_idempotent(cli):
    first, second = cli("db", "upgrade"), cli("db", "upgrade")
    assert first.exit_code == second.exit_code == 0
    assert "up to date" in second.output


def test_keys_are_only_stored_hashed(run, session):
    from sqlalchemy import select
    from models import ApiKey

    key = run(lambda db, svc: api_keys.create(db, svc, "hashed"))
    row = session.scalars(select(ApiKey).where(ApiKey.name == "hashed")).one()
    assert key not in row.key_hash and len(row.key_hash) == 64


def test_a_revoked_api_key_stops_working(cli, client, bob, clock):
    import api

    key = cli("apikeys", "create", "old-portal").output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    body = {"username": "bob", "password": PASSWORD}
    assert client.post("/api/v1/authentications", json=body, headers=headers).status_code == 201
    revoked = cli("apikeys", "revoke", "old-portal")
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    clock.advance(seconds=api.KEY_CACHE_SECONDS + 1)  # past this worker's key cache
    assert client.post("/api/v1/authentications", json=body, headers=headers).status_code == 401
    listed = cli("apikeys", "list").output
    assert "old-portal" in listed and "revoked" in listed and key not in listed


def test_revoking_an_unknown_api_key_exits_non_zero(cli):
    result = cli("apikeys", "revoke", "nobody")
    assert result.exit_code != 0 and "No active API key" in result.output


def test_cli_database_errors_are_one_line(app_config, tmp_path):
    app = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    result = app.test_cli_runner().invoke(args=["users", "show", "bob"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "db upgrade" in result.output
    assert len(result.output.strip().splitlines()) == 1
