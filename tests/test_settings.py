"""Settings: strict at start-up, one clear line naming what is wrong."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("override, named", [
    ({"TELEPHONY_PROVIDER": "twilio"}, "TWILIO_ACCOUNT_SID"),
    ({"TELEPHONY_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
    ({"TELEPHONY_PROVIDER": "carrier-pigeon"}, "TELEPHONY_PROVIDER"),
    ({"DATA_KEY": "not-a-fernet-key"}, "DATA_KEY"),
    ({"PUBLIC_BASE_URL": "mfa.example.org"}, "PUBLIC_BASE_URL"),
    ({"TWILIO_FROM_NUMBER": "01632 960000"}, "TWILIO_FROM_NUMBER"),
    ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
    ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
    ({"MFA_ENV": "production", "SECRET_KEY": ""}, "SECRET_KEY"),
    ({"VOICE_PROMPTS": "espeak"}, "VOICE_PROMPTS"),
    ({"SERVICE_NAME_CY": "Mewngofnodi Diogel Cyngor Sir Ddinbych"}, "SERVICE_NAME_CY"),  # over 30 characters
    ({"SERVICE_NAME_CY": "Gwasanaeth Dŵr"}, "SERVICE_NAME_CY"),  # ŵ is not GSM-7
])
def test_a_bad_setting_stops_start_up_naming_it(app_config, override, named):
    with pytest.raises(SettingsError) as stopped:
        create_app({**app_config, **override})
    assert named in str(stopped.value)


def test_production_refuses_missing_secrets_instead_of_generating_them(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MFA_ENV": "production", "INSTANCE_PATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "SECRET_KEY is required when MFA_ENV=production."
    assert not (tmp_path / "secret_key").exists()


def test_development_generates_secrets_once_and_keeps_them(app_config, tmp_path):
    config = {**app_config, "SECRET_KEY": "", "DATA_KEY": "", "INSTANCE_PATH": str(tmp_path / "dev")}
    first = create_app(config)
    second = create_app(config)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert (tmp_path / "dev" / "data_key").stat().st_mode & 0o777 == 0o600


def test_several_data_keys_let_old_data_be_read_after_rotation(app_config):
    from cryptography.fernet import Fernet

    old = create_app(app_config).extensions["mfa"].services.vault
    token = old.encrypt("+447700900123")
    rotated = create_app({**app_config, "DATA_KEY": f"{Fernet.generate_key().decode()},{app_config['DATA_KEY']}"})
    vault = rotated.extensions["mfa"].services.vault
    assert vault.decrypt(token) == "+447700900123"
    assert vault.matches("+447700900123", old.keyed_hash("+447700900123"))


def test_postgres_urls_in_the_heroku_style_are_accepted(app_config):
    app = create_app({**app_config, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test"})
    assert app.extensions["mfa"].settings.database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("url", ["mysql://root@localhost/db", "nonsense://x"])
def test_unsupported_databases_stop_start_up_naming_database_url(app_config, url):
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        create_app({**app_config, "DATABASE_URL": url})


def test_voice_prompts_and_the_welsh_service_name_are_read(app_config):
    settings = create_app({**app_config, "VOICE_PROMPTS": " Say ", "SERVICE_NAME_CY": " Mewngofnodi Diogel "}
                          ).extensions["mfa"].settings
    assert (settings.voice_prompts, settings.service_name_cy) == ("say", "Mewngofnodi Diogel")
    defaults = create_app(app_config).extensions["mfa"].settings
    assert (defaults.voice_prompts, defaults.service_name_cy) == ("auto", None)
