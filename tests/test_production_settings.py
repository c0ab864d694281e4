"""Production start-up: an https public address only, and one line saying where calls and texts go."""
from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet

from app import create_app
from ops import logs
from settings import SettingsError, load

ACCOUNT_SID = "AC" + "0" * 28 + "1234"
AUTH_TOKEN = "token-that-never-reaches-a-log"


def production(**overrides: str) -> dict[str, str]:
    return {"MFA_ENV": "production", "SECRET_KEY": "s", "DATA_KEY": Fernet.generate_key().decode(),
            "TELEPHONY_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": "+441134960000", "PUBLIC_BASE_URL": "https://mfa.example.org", **overrides}


@pytest.mark.parametrize("url", ["http://mfa.example.org", "http://127.0.0.1:8000"])
def test_production_refuses_a_public_base_url_that_is_not_https(tmp_path, url):
    with pytest.raises(SettingsError) as stopped:
        load(production(PUBLIC_BASE_URL=url), tmp_path)
    assert str(stopped.value).startswith("PUBLIC_BASE_URL must be an https URL when MFA_ENV=production")
    assert len(str(stopped.value).splitlines()) == 1


def test_production_without_a_public_base_url_is_refused_rather_than_defaulting_to_http(tmp_path):
    environ = production()
    del environ["PUBLIC_BASE_URL"]
    with pytest.raises(SettingsError, match="^PUBLIC_BASE_URL"):
        load(environ, tmp_path)


def test_development_still_accepts_http(tmp_path):
    assert load({"PUBLIC_BASE_URL": "http://127.0.0.1:5000"}, tmp_path).public_base_url == "http://127.0.0.1:5000"
    assert load(production(), tmp_path).public_base_url == "https://mfa.example.org"


@pytest.fixture
def restored_logging():
    root_level = logging.getLogger().level
    yield
    logs.remove_handler()
    logging.getLogger().setLevel(root_level)


def startup_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mfa.startup"]


def test_a_logging_server_names_the_twilio_endpoint_and_a_masked_account_at_start(app_config, caplog,
                                                                                  restored_logging):
    caplog.set_level(logging.INFO, logger="mfa.startup")
    app = create_app({**app_config, "LOG_FORMAT": "json", "TELEPHONY_PROVIDER": "twilio",
                      "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                      "TWILIO_FROM_NUMBER": "+441134960000",
                      "TWILIO_API_BASE_URL": "https://user:password@standin.example.org:8443/?key=s3cret"})
    app.extensions["mfa"].engine.dispose()
    assert startup_lines(caplog) == ["telephony: twilio at https://standin.example.org:8443 (account AC…1234)"]
    assert not any(secret in caplog.text for secret in (AUTH_TOKEN, ACCOUNT_SID, "password", "s3cret"))


def test_the_simulator_is_named_too(app_config, caplog, restored_logging):
    caplog.set_level(logging.INFO, logger="mfa.startup")
    create_app({**app_config, "LOG_FORMAT": "text"}).extensions["mfa"].engine.dispose()
    (line,) = startup_lines(caplog)
    assert line.startswith("telephony: simulator at http://")


def test_a_development_server_without_log_format_says_nothing(app_config, caplog):
    caplog.set_level(logging.INFO, logger="mfa.startup")
    create_app(app_config).extensions["mfa"].engine.dispose()
    assert startup_lines(caplog) == []
