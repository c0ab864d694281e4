"""Small helpers the tests share."""
from __future__ import annotations

import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pyotp


class ApiClient:
    """The Flask test client with the API key header and JSON bodies."""

    def __init__(self, client, key: str):
        self.client = client
        self.key = key

    def _headers(self):
        return {"Authorization": f"Bearer {self.key}"}

    def post(self, path: str, json=None, **kwargs):
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(), **kwargs)

    def get(self, path: str):
        return self.client.get("/api/v1" + path, headers=self._headers())


def post_form(client, path: str, data: dict, token_from: str | None = None):
    """Post a page's form as a browser does: with the CSRF token of the page that shows it."""
    page = client.get(token_from or path).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "no CSRF token on " + (token_from or path)
    return client.post(path, data={"csrf_token": token.group(1), **data})


def secret_from_uri(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def oathtool_code(secret: str, when) -> str:
    """A TOTP code from an independent implementation (Debian's oathtool)."""
    out = subprocess.run(
        ["oathtool", "--totp", "-b", "--now", when.strftime("%Y-%m-%d %H:%M:%S UTC"), secret],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


def pyotp_code(secret: str, when) -> str:
    return pyotp.TOTP(secret).at(when)


class LiveServer:
    """Serves an app on a free port in a thread; the port is known before the app exists,
    because PUBLIC_BASE_URL (which webhooks are signed against) must name it."""

    def __init__(self):
        from werkzeug.serving import make_server

        self._app = None
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def _dispatch(self, environ, start_response):
        return self._app(environ, start_response)

    def start(self, app):
        import threading

        self._app = app
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


class LiveApi:
    """JSON API calls over real HTTP."""

    def __init__(self, base_url: str, key: str):
        import requests

        self.base = base_url + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def post(self, path: str, json=None):
        return self.http.post(self.base + path, json=json, timeout=15)

    def get(self, path: str):
        return self.http.get(self.base + path, timeout=15)


def add_phone(run, user, number: str, kind: str = "mobile", types=("sms", "voice")):
    """Give a person a verified phone directly (test set-up; registration has its own tests)."""
    from models import Method
    from mfa.phones import mask

    def add(db, svc):
        now = svc.clock.now()
        rows = [Method(user_id=user.id, type=t, kind=kind, label=mask(number),
                       phone_encrypted=svc.vault.encrypt(number), phone_lookup=svc.vault.keyed_hash(number),
                       verified_at=now, created_at=now, is_default=(i == 0))
                for i, t in enumerate(types)]
        db.add_all(rows)
        db.flush()
        return [r.id for r in rows]

    return run(add)


def sign_webhook(token: str, url: str, params: dict) -> dict:
    from twilio.request_validator import RequestValidator

    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}
