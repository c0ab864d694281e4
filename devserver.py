"""`python app.py`: the embedded default, ready to try on one machine.

SQLite in the instance folder, the schema migrated, a demo administrator in
England and a demo API key (made once, remembered in the instance folder), and
the local Twilio stand-in with its dev phone and SMS inbox.
"""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from app import create_app
from cli.database import upgrade
from mfa import accounts, api_keys
from mfa.unit_of_work import use_case

DEMO_USER = "demo.admin@example.org"


def _remembered(instance: Path, name: str, make) -> tuple[str, bool]:
    path = instance / name
    if path.exists():
        return path.read_text().strip(), False
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value, True


def ensure_demo(app) -> tuple[str, str]:
    rt = app.extensions["mfa"]
    instance = Path(app.instance_path)
    password, _ = _remembered(instance, "demo_password", lambda: secrets.token_urlsafe(12))
    with rt.sessions() as db, use_case(db):
        if accounts.find_user(db, DEMO_USER) is None:
            accounts.create_user(db, rt.services, DEMO_USER, password, role="admin", region="england")
        key_path = instance / "demo_api_key"
        if not key_path.exists():
            key_path.write_text(api_keys.create(db, rt.services, f"demo-{secrets.token_hex(3)}"))
            key_path.chmod(0o600)
    return password, (instance / "demo_api_key").read_text().strip()


def start_standin(settings, instance: Path):
    """Serve the Twilio stand-in where TWILIO_API_BASE_URL points, unless one already answers.

    It gets this instance's auth token (generated once, like SECRET_KEY), so it signs its
    webhooks with what the app checks.
    """
    from urllib.parse import urlsplit

    import requests

    try:
        # Something (another dev server, a test) already serves it: it must know this instance's
        # generated token (instance/twilio_auth_token), or it refuses us and we refuse its webhooks.
        probe = requests.get(f"{settings.twilio_api_base_url}/2010-04-01/Accounts/{settings.twilio_account_sid}"
                             "/Calls/CA00000000000000000000000000000000.json",
                             auth=(settings.twilio_account_sid, settings.twilio_auth_token), timeout=0.5)
        if probe.status_code == 401:
            logging.getLogger(__name__).error(
                "the Twilio stand-in at %s has another auth token: stop it, or start it with "
                "`python -m standin --instance %s`", settings.twilio_api_base_url, instance)
        return None
    except requests.RequestException:
        pass
    from standin import StandinServer, create_standin_app

    parts = urlsplit(settings.twilio_api_base_url)
    server = StandinServer(
        create_standin_app(settings.twilio_account_sid, settings.twilio_auth_token, realtime=True),
        host=parts.hostname, port=parts.port or 80,
    )
    server.start()
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    settings = app.extensions["mfa"].settings
    upgrade(settings.database_url)
    password, api_key = ensure_demo(app)
    standin = (start_standin(settings, Path(app.instance_path))
               if settings.telephony_provider == "simulator" else None)
    port = int(os.environ.get("PORT", "5000"))
    base = settings.public_base_url
    print(
        "\n"
        f"  MFA verification server (development) on {base}\n"
        f"  Sign in:         {base}/sign-in\n"
        f"  Database:        {settings.database_url}\n"
        f"  Demo admin:      {DEMO_USER}  password: {password}\n"
        f"  Demo API key:    {api_key}\n"
        f"  Try the API:     curl -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\\n"
        f"                     -d '{{\"username\": \"{DEMO_USER}\", \"password\": \"{password}\"}}' "
        f"{base}/api/v1/authentications\n"
        + (f"  Dev phone:       {settings.twilio_api_base_url}/phone\n"
           f"  SMS inbox:       {settings.twilio_api_base_url}/inbox\n"
           if standin or settings.telephony_provider == "simulator" else "")
        + "  Stop with Ctrl+C.\n",
        flush=True,
    )
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=port, threaded=True, use_reloader=False)
