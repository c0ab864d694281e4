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
from edge import check_data_key_at_start
from mfa import accounts, api_keys
from mfa.unit_of_work import use_case
from standin.app import IDENTITY

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


class PortTaken(SystemExit):
    """The stand-in's port answers, but not as a stand-in this server can use: one line says what."""


def dev_defaults(environ) -> dict[str, str]:
    """PORT moves the whole dev set-up: the URL webhooks and the banner use, and the stand-in
    beside it (PORT + 1), unless PUBLIC_BASE_URL or TWILIO_API_BASE_URL say otherwise."""
    port = int(environ.get("PORT") or "5000")
    defaults = {"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    if environ.get("TELEPHONY_PROVIDER", "simulator") == "simulator":
        defaults["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{port + 1}"
    return {name: value for name, value in defaults.items() if not environ.get(name)}


def running_standin(settings) -> dict | None:
    """What already answers where TWILIO_API_BASE_URL points: None when nothing does, else the
    stand-in's own description (GET /standin.json). Anything else, or a stand-in with another
    auth token (it would refuse us, and we its webhooks), stops start-up naming it."""
    import requests

    base = settings.twilio_api_base_url
    try:
        answer = requests.get(f"{base}/standin.json", timeout=0.5)
    except requests.RequestException:
        return None
    try:
        found = answer.json() if answer.ok else None
    except ValueError:
        found = None
    if not isinstance(found, dict) or found.get("service") != IDENTITY:
        server = answer.headers.get("Server", "unknown server")
        raise PortTaken(f"{base} is already in use by something that is not the Twilio stand-in "
                        f"(HTTP {answer.status_code}, {server}): stop it, or set PORT or "
                        "TWILIO_API_BASE_URL to a free port")
    probe = requests.get(f"{base}/2010-04-01/Accounts/{settings.twilio_account_sid}"
                         "/Calls/CA00000000000000000000000000000000.json",
                         auth=(settings.twilio_account_sid, settings.twilio_auth_token), timeout=0.5)
    if probe.status_code == 401:
        raise PortTaken(f"{base} is already in use by another Twilio stand-in, {described(found)}, "
                        "with another auth token: stop it, or set PORT or TWILIO_API_BASE_URL to a free port")
    return found


def described(standin: dict) -> str:
    return f"started by {standin.get('started_by') or 'an unknown command'}, process {standin.get('pid')}"


def start_standin(settings, instance: Path, started_by: str = "python app.py"):
    """Serve the Twilio stand-in where TWILIO_API_BASE_URL points, with this instance's auth
    token (generated once, like SECRET_KEY) so it signs its webhooks with what the app checks."""
    from urllib.parse import urlsplit

    from standin import StandinServer, create_standin_app

    parts = urlsplit(settings.twilio_api_base_url)
    server = StandinServer(
        create_standin_app(settings.twilio_account_sid, settings.twilio_auth_token, realtime=True,
                           started_by=f"{started_by} (instance {instance})"),
        host=parts.hostname, port=parts.port or 80,
    )
    server.start()
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(dev_defaults(os.environ))
    settings = app.extensions["mfa"].settings
    upgrade(settings.database_url)
    check_data_key_at_start(settings)  # stored secrets DATA_KEY cannot decrypt stop it with one line
    password, api_key = ensure_demo(app)
    port = int(os.environ.get("PORT") or "5000")
    base = settings.public_base_url
    simulated = settings.telephony_provider == "simulator"
    standin_note = ""
    if simulated:
        running = running_standin(settings)  # stops start-up, naming it, unless it can be shared
        if running is None:
            start_standin(settings, Path(app.instance_path), f"python app.py on {base}")
            standin_note = "started with this server"
        else:
            standin_note = f"already running there, {described(running)}: shared with it"
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
        + (f"  Twilio stand-in: {settings.twilio_api_base_url} ({standin_note})\n"
           f"  Dev phone:       {settings.twilio_api_base_url}/phone\n"
           f"  SMS inbox:       {settings.twilio_api_base_url}/inbox\n"
           if simulated else "")
        + "  Stop with Ctrl+C.\n",
        flush=True,
    )
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=port, threaded=True, use_reloader=False)
