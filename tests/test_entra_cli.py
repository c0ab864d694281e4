"""`users link-entra` (CONTRACT §2): the operator says which Entra user signs in as which person here."""
from __future__ import annotations

import pytest

from mfa.entra import links
from tests.entra_fixture import OTHER_TENANT, SETTINGS, TENANT
from tests.entra_fixture import cli  # noqa: F401  (fixtures)

OID = "cccc3333-dddd-4444-eeee-5555ffff6666"


@pytest.fixture
def app_config(app_config):
    return {**app_config, **SETTINGS}


def link(cli, username: str, tenant: str = TENANT, oid: str = OID):
    return cli("users", "link-entra", username, "--tenant", tenant, "--oid", oid)


def refused_in_one_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


def linked_person(run, tenant: str = TENANT, oid: str = OID) -> str | None:
    user = run(lambda db, svc: links.person(db, tenant, oid))
    return user.username if user else None


def test_linking_an_entra_user_lets_it_sign_in_as_that_person(cli, run, bob):
    result = link(cli, "bob")
    assert result.exit_code == 0, result.output
    assert f"Linked Entra user {OID} (tenant {TENANT}) to bob." in result.stdout
    assert result.stderr == ""  # the tenant is allowed: no note
    assert linked_person(run) == "bob"


def test_guids_are_stored_in_lower_case(cli, run, bob):
    result = link(cli, "bob", TENANT.upper(), OID.upper())
    assert result.exit_code == 0, result.output
    assert OID in result.stdout and OID.upper() not in result.stdout
    assert linked_person(run) == "bob"


@pytest.mark.parametrize("tenant, oid, named", [
    ("contoso.onmicrosoft.com", OID, "tenant ID"),
    (TENANT, "not-a-guid", "object ID"),
    (TENANT, OID[:-1], "object ID"),
    (TENANT, "{" + OID + "}", "object ID"),
])
def test_a_value_that_is_not_a_guid_is_refused_in_one_line(cli, run, bob, tenant, oid, named):
    assert named in refused_in_one_line(link(cli, "bob", tenant, oid))
    assert run(lambda db, svc: links.of(db, bob)) == []


def test_an_unknown_person_is_refused(cli):
    assert "No user called" in refused_in_one_line(link(cli, "nobody"))


def test_an_entra_user_already_linked_to_someone_else_is_refused(cli, run, bob, carol):
    assert link(cli, "bob").exit_code == 0
    assert "already" in refused_in_one_line(link(cli, "carol"))
    assert linked_person(run) == "bob"


def test_linking_the_same_entra_user_to_the_same_person_again_is_fine(cli, run, bob):
    assert link(cli, "bob").exit_code == 0
    again = link(cli, "bob", TENANT.upper(), OID)
    assert again.exit_code == 0, again.output
    assert len(run(lambda db, svc: links.of(db, bob))) == 1


def test_a_tenant_outside_eam_allowed_tenants_is_linked_with_a_note(cli, run, bob):
    result = link(cli, "bob", OTHER_TENANT)
    assert result.exit_code == 0, result.output
    assert "EAM_ALLOWED_TENANTS" in result.stderr and OTHER_TENANT in result.stderr
    assert "EAM_ALLOWED_TENANTS" not in result.stdout
    assert linked_person(run, OTHER_TENANT) == "bob"


def test_users_show_lists_the_linked_entra_user(cli, bob):
    assert "entra user" not in cli("users", "show", "bob").output
    link(cli, "bob")
    assert f"entra user: {OID} (tenant {TENANT})" in cli("users", "show", "bob").output


def test_an_operator_unlinks_a_person_in_one_tenant_or_all(cli, alice):
    assert cli("users", "link-entra", "alice", "--tenant", TENANT, "--oid", OID).exit_code == 0
    assert cli("users", "link-entra", "alice", "--tenant", OTHER_TENANT, "--oid", OID).exit_code == 0
    one = cli("users", "unlink-entra", "alice", "--tenant", OTHER_TENANT)
    assert one.exit_code == 0 and "Removed 1 Entra link of alice." in one.output
    assert f"entra user: {OID} (tenant {TENANT})" in cli("users", "show", "alice").output
    assert f"(tenant {OTHER_TENANT})" not in cli("users", "show", "alice").output
    assert cli("users", "unlink-entra", "alice").exit_code == 0
    nothing = cli("users", "unlink-entra", "alice")
    assert nothing.exit_code != 0 and len(nothing.output.strip().splitlines()) == 1
    assert "entra user" not in cli("users", "show", "alice").output
