"""EAM_* settings (CONTRACT §1): Entra external MFA is off without EAM_ISSUER, and when it is on, each
malformed setting stops start-up with one line naming it."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from settings import ENTRA_KEYS_URL, SettingsError, load
from tests.entra_fixture import APP_ID, CLIENT_ID, ISSUER, OTHER_TENANT, TENANT

ENTRA = {"EAM_ISSUER": ISSUER, "EAM_CLIENT_ID": CLIENT_ID, "EAM_APP_ID": APP_ID, "EAM_ALLOWED_TENANTS": TENANT}


def development(**entra: str) -> dict[str, str]:
    return {"DATA_KEY": Fernet.generate_key().decode(), "SECRET_KEY": "s", **ENTRA, **entra}


def production(**entra: str) -> dict[str, str]:
    """The least a production server needs (it refuses the simulator and generated secrets)."""
    return {**development(**entra), "MFA_ENV": "production", "TELEPHONY_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM_NUMBER": "+441134960000",
            "PUBLIC_BASE_URL": "https://mfa.example.org"}


def refusal(environ: dict[str, str], tmp_path) -> str:
    with pytest.raises(SettingsError) as stopped:
        load(environ, tmp_path)
    message = str(stopped.value)
    assert len(message.splitlines()) == 1
    return message


def test_a_well_formed_set_turns_entra_on_with_guids_in_lower_case(tmp_path):
    entra = load(development(EAM_APP_ID=APP_ID.upper(), EAM_ALLOWED_TENANTS=f" {TENANT.upper()} ,{OTHER_TENANT}"),
                 tmp_path).entra
    assert entra is not None
    assert (entra.issuer, entra.client_id, entra.app_id) == (ISSUER, CLIENT_ID, APP_ID)
    assert entra.allowed_tenants == {TENANT, OTHER_TENANT}
    assert entra.keys_url == ENTRA_KEYS_URL and entra.path == "/entra"


@pytest.mark.parametrize("override, named", [
    ({"EAM_ISSUER": "http://mfa.example.test/entra"}, "EAM_ISSUER"),
    ({"EAM_ISSUER": f"{ISSUER}/"}, "EAM_ISSUER"),
    ({"EAM_ISSUER": "https://mfa.example.test:443/entra"}, "EAM_ISSUER"),
    ({"EAM_ISSUER": f"{ISSUER}?tenant=x"}, "EAM_ISSUER"),
    ({"EAM_ISSUER": f"{ISSUER}#x"}, "EAM_ISSUER"),
    ({"EAM_ISSUER": "mfa.example.test/entra"}, "EAM_ISSUER"),
    ({"EAM_CLIENT_ID": ""}, "EAM_CLIENT_ID"),
    ({"EAM_CLIENT_ID": "two words"}, "EAM_CLIENT_ID"),
    ({"EAM_CLIENT_ID": "x" * 256}, "EAM_CLIENT_ID"),
    ({"EAM_APP_ID": ""}, "EAM_APP_ID"),
    ({"EAM_APP_ID": "not-a-guid"}, "EAM_APP_ID"),
    ({"EAM_APP_ID": APP_ID[:-1]}, "EAM_APP_ID"),
    ({"EAM_ALLOWED_TENANTS": ""}, "EAM_ALLOWED_TENANTS"),
    ({"EAM_ALLOWED_TENANTS": " , "}, "EAM_ALLOWED_TENANTS"),
    ({"EAM_ALLOWED_TENANTS": f"{TENANT},contoso.onmicrosoft.com"}, "EAM_ALLOWED_TENANTS"),
    ({"EAM_ENTRA_KEYS_URL": "ftp://login.microsoftonline.com/keys"}, "EAM_ENTRA_KEYS_URL"),
])
def test_a_malformed_entra_setting_stops_start_up_naming_it(tmp_path, override, named):
    assert named in refusal(development(**override), tmp_path)


def test_an_http_entra_keys_url_is_refused_in_production_only(tmp_path):
    http = "http://127.0.0.1:8080/keys"  # a stand-in for Entra, as the tests use
    developing = load(development(EAM_ENTRA_KEYS_URL=http), tmp_path).entra
    producing = load(production(), tmp_path).entra
    assert developing is not None and developing.keys_url == http
    assert producing is not None and producing.keys_url == ENTRA_KEYS_URL  # the production base itself starts
    assert "EAM_ENTRA_KEYS_URL" in refusal(production(EAM_ENTRA_KEYS_URL=http), tmp_path)


def test_without_eam_issuer_entra_is_off_whatever_else_is_set(tmp_path):
    environ = development(EAM_APP_ID="not-a-guid", EAM_ALLOWED_TENANTS="nonsense")
    del environ["EAM_ISSUER"]
    assert load(environ, tmp_path).entra is None
    assert load({**environ, "EAM_ISSUER": "  "}, tmp_path).entra is None  # blank is unset, like every setting
