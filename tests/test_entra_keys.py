"""Our side of Entra's trust (issue 15): the discovery document, the JWKS our id_tokens verify against,
and rotating the signing key by `flask --app app entra keys …` without a token Entra cannot verify."""
from __future__ import annotations

import base64
import hashlib

import jwt
import pytest
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from app import create_app
from mfa.entra import signing_keys
from models import EntraSigningKey
from tests.conftest import run_in
from tests.entra_fixture import CLIENT_ID, ISSUER, PATH, SETTINGS
from tests.entra_fixture import cli  # noqa: F401  (fixtures)

NEW_DATA_KEY = Fernet.generate_key().decode()
CLAIMS: dict[str, object] = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "someone"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, **SETTINGS}


def keys(cli, *args: str):
    return cli("entra", "keys", *args)


def added(cli) -> str:
    """A new key's kid, from `entra keys add`."""
    result = keys(cli, "add")
    assert result.exit_code == 0, result.output
    return result.output.split("Added key ", 1)[1].split(" ", 1)[0]


def refused_in_one_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


def published(client) -> dict[str, dict]:
    response = client.get(f"{PATH}/keys")
    assert response.status_code == 200
    return {jwk["kid"]: jwk for jwk in response.get_json()["keys"]}


def signed_by(run) -> str:
    """The kid of an id_token signed now."""
    return jwt.get_unverified_header(run(lambda db, svc: signing_keys.sign(db, svc, ISSUER, CLAIMS)))["kid"]


def verifies(token: str, jwk: dict) -> bool:
    """As Entra checks it: the signature against the published key the token's kid names."""
    try:
        jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience=CLIENT_ID, issuer=ISSUER)
    except jwt.InvalidTokenError:
        return False
    return True


def test_the_discovery_document_says_what_entra_needs(client):
    response = client.get(f"{PATH}/.well-known/openid-configuration")
    assert response.status_code == 200
    document = response.get_json()
    assert document["issuer"] == ISSUER  # Entra compares it exactly, with no trailing slash
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert document["jwks_uri"] == f"{ISSUER}/keys"
    assert document["scopes_supported"] == ["openid"]
    assert document["response_types_supported"] == ["id_token"]
    assert document["response_modes_supported"] == ["form_post"]
    assert document["grant_types_supported"] == ["implicit"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["claim_types_supported"] == ["normal"]


def test_every_published_key_carries_its_certificate_and_thumbprint(client, cli):
    added(cli)
    added(cli)  # one signing, one published
    jwks = published(client)
    assert len(jwks) == 2
    for kid, jwk in jwks.items():
        assert {"kid", "use", "alg", "n", "e", "x5t", "x5c"} <= jwk.keys() and jwk["kid"] == kid
        assert (jwk["kty"], jwk["use"], jwk["alg"]) == ("RSA", "sig", "RS256")
        der = base64.b64decode(jwk["x5c"][0])
        certificate = x509.load_der_x509_certificate(der)
        public = certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        numbers = public.public_numbers()
        assert numbers.n == int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=="), "big")
        assert numbers.e == int.from_bytes(base64.urlsafe_b64decode(jwk["e"] + "=="), "big")
        assert jwk["x5t"] == base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324
        assert certificate.public_bytes(serialization.Encoding.DER) == der


def test_the_jwks_makes_the_first_key_and_it_verifies_what_we_sign(client, run):
    jwks = published(client)
    assert len(jwks) == 1
    token = run(lambda db, svc: signing_keys.sign(db, svc, ISSUER, CLAIMS))
    assert verifies(token, jwks[jwt.get_unverified_header(token)["kid"]])
    assert published(client) == jwks  # fetched again: the same key, none added


def test_rotation_publishes_first_then_signs_then_retires_the_old_key(client, cli, run, clock):
    first = added(cli)
    assert signed_by(run) == first
    old_token = run(lambda db, svc: signing_keys.sign(db, svc, ISSUER, CLAIMS))

    second = added(cli)
    assert set(published(client)) == {first, second}
    assert signed_by(run) == first  # published only: Entra may not have fetched it yet

    too_soon = refused_in_one_line(keys(cli, "promote", second))
    assert "24 hours" in too_soon and "--force" in too_soon
    assert signed_by(run) == first

    clock.advance(hours=24)
    promoted = keys(cli, "promote", second)
    assert promoted.exit_code == 0, promoted.output
    assert signed_by(run) == second
    jwks = published(client)
    assert set(jwks) == {first, second}  # tokens the old key signed still verify
    assert verifies(old_token, jwks[first])
    listing = keys(cli, "list").output
    assert f"{first}  published" in listing and f"{second}  signing" in listing

    retired = keys(cli, "retire", first)
    assert retired.exit_code == 0, retired.output
    assert set(published(client)) == {second}
    assert signed_by(run) == second
    assert f"{first}  retired" in keys(cli, "list").output


def test_force_promotes_a_key_published_less_than_a_day_ago(cli, run):
    added(cli)
    second = added(cli)
    forced = keys(cli, "promote", second, "--force")
    assert forced.exit_code == 0, forced.output
    assert signed_by(run) == second


def test_the_signing_key_cannot_be_retired(client, cli, run):
    first = added(cli)
    assert "signing key" in refused_in_one_line(keys(cli, "retire", first))
    assert set(published(client)) == {first}
    assert signed_by(run) == first


@pytest.mark.parametrize("command", ["promote", "retire"])
def test_an_unknown_kid_is_refused_in_one_line(cli, command):
    added(cli)
    assert "No Entra signing key" in refused_in_one_line(keys(cli, command, "no-such-kid"))


def test_a_retired_key_cannot_be_promoted_again(client, cli, clock):
    first = added(cli)
    second = added(cli)
    clock.advance(hours=25)
    assert keys(cli, "promote", second).exit_code == 0
    assert keys(cli, "retire", first).exit_code == 0
    assert "retired" in refused_in_one_line(keys(cli, "promote", first, "--force"))
    assert set(published(client)) == {second}


def test_the_private_key_is_stored_encrypted(cli, run):
    kid = added(cli)
    stored = run(lambda db, svc: db.scalar(select(EntraSigningKey.private_key).where(EntraSigningKey.kid == kid)))
    assert b"BEGIN PRIVATE KEY" not in stored and b"PRIVATE" not in stored
    assert "BEGIN PRIVATE KEY" in run(lambda db, svc: svc.vault.decrypt(stored))


def test_rotate_key_re_encrypts_the_signing_key_and_signing_goes_on(app_config, client, cli, run):
    kid = added(cli)
    jwk = published(client)[kid]
    rotating = create_app({**app_config, "DATA_KEY": f"{NEW_DATA_KEY},{app_config['DATA_KEY']}"})
    result = rotating.test_cli_runner().invoke(args=["data", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "secrets re-encrypted: 1;" in result.output
    stored = run(lambda db, svc: db.scalar(select(EntraSigningKey.private_key)))
    assert "BEGIN PRIVATE KEY" in Fernet(NEW_DATA_KEY).decrypt(stored).decode()

    rotated = create_app({**app_config, "DATA_KEY": NEW_DATA_KEY})  # the old key gone altogether
    token = run_in(rotated, lambda db, svc: signing_keys.sign(db, svc, ISSUER, CLAIMS))
    assert jwt.get_unverified_header(token)["kid"] == kid
    assert verifies(token, jwk)


def test_with_entra_off_there_is_no_discovery_and_no_keys_to_add(app_config):
    off = create_app({k: v for k, v in app_config.items() if not k.startswith("EAM_")})
    assert off.extensions["mfa"].settings.entra is None
    client = off.test_client()
    assert client.get(f"{PATH}/.well-known/openid-configuration").status_code == 404
    assert client.get(f"{PATH}/keys").status_code == 404
    runner = off.test_cli_runner()
    assert "EAM_ISSUER" in refused_in_one_line(runner.invoke(args=["entra", "keys", "add"]))
    assert run_in(off, lambda db, svc: signing_keys.listed(db)) == []
