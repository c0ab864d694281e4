"""Small helpers the tests share."""
from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import requests

from tests.personas import ALICE, MOBILE, PASSWORD


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


def matched(pattern: str, text: str) -> re.Match[str]:
    """re.search that fails the test, showing the text, when nothing matches."""
    found = re.search(pattern, text)
    assert found, f"no {pattern!r} in {text!r}"
    return found


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

        self._app: Any = None
        self.api: LiveApi  # set by whoever starts it: the JSON API client of this server
        self.app: Any = None
        self._server = make_server("127.0.0.1", 0, self._dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def _dispatch(self, environ, start_response):
        # The whole body at once, and the app's response closed here: werkzeug's test server skips
        # close() when a browser drops a connection mid-answer (a page left while its CSS loads),
        # leaving a static file open for the garbage collector to warn about, in some later test.
        body = self._app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

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


# --- steps of a sign-in through the JSON API, with the test client or over real HTTP -----------


def response_json(response: Any) -> Any:
    """The body of a test-client response (`.json`, a property) or a requests one (`.json()`)."""
    return response.json() if isinstance(response, requests.Response) else response.json


def start_sign_in(via: Any, username: str = "bob", password: str = PASSWORD, *,
                  expect: str | None = None) -> dict[str, Any]:
    """Start a sign-in (the password step); the authentication as the API shows it (at least
    `id` and `status`). Tests of a refused password step post /authentications themselves.

    `via` is an ApiClient (test client), a LiveApi (real HTTP) or the `run` fixture (the domain
    itself, no HTTP). `expect` also asserts the status (e.g. "mfa_required").
    """
    if not isinstance(via, (ApiClient, LiveApi)):
        from mfa import authentications

        auth = via(lambda db, svc: authentications.start(db, svc, username, password, "127.0.0.1"))
        body: dict[str, Any] = {"id": auth.id, "status": str(auth.status)}
    else:
        response = via.post("/authentications", {"username": username, "password": password})
        body = response_json(response)
        assert response.status_code == 201, body
    if expect is not None:
        assert body["status"] == expect, body
    return body


def enrol_app(api: Any, clock: Any, username: str = "bob") -> str:
    """Register an authenticator app through the API; returns its secret."""
    auth = start_sign_in(api, username)
    registered = api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"})
    secret = secret_from_uri(response_json(registered)["otpauth_uri"])
    done = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert response_json(done)["status"] == "approved"
    clock.advance(90)  # later sign-ins use time steps the enrolment did not
    return secret


def register_mobile(live: Any, phones: Any, number: str = "07400 123456", username: str = "bob") -> tuple[dict, Any]:
    """Start a sign-in and register a mobile by text; the sign-in and the registration's response."""
    auth = start_sign_in(live.api, username)
    response = live.api.post(f"/authentications/{auth['id']}/registrations",
                             {"type": "phone", "number": number, "kind": "mobile", "delivery": "sms"})
    return auth, response


def last_code(phones: Any, number: str = MOBILE) -> str:
    """The code in the last text the stand-in delivered to `number`."""
    phones.wait_idle()
    # The last text with a code: a change notification (mfa/change_notices.py) may have come after it.
    texts = [m.body for m in phones.messages(to=number)]
    body = next((t for t in reversed(texts) if re.search(r"#\d{6}$", t)), texts[-1] if texts else "")
    found = re.search(r"#(\d{6})$", body)
    assert found, body
    return found.group(1)


def ring(live: Any, phones: Any, auth: dict, number: str = ALICE) -> str:
    """Ask for a verification call for `auth`; the stand-in's CallSid once it rings."""
    response = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    assert response.status_code == 201, response.text
    phones.wait_idle()
    return phones.calls(to=number)[-1].sid


def method_id(auth: dict, type_: str) -> str:
    """The id of the sign-in's first method of a type ("voice", "sms", "totp")."""
    return next(m["id"] for m in auth["methods"] if m["type"] == type_)


def state(live: Any, auth: dict) -> dict[str, Any]:
    """The sign-in as the API shows it now."""
    return live.api.get(f"/authentications/{auth['id']}").json()


def close_rate_limit_store(app) -> None:
    """Close an app's Redis rate-limit connections now (left to the collector, each warns in a later test)."""
    store = getattr(app.extensions["mfa_limiter"].storage, "storage", None)
    if store is not None:
        store.close()
        store.connection_pool.disconnect()


def run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Each job in its own thread, all released at once by a barrier; their outcomes, sorted.
    A job turns its own refusals into outcomes (an exception would leave its outcome out)."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[Any] = []
    lock = threading.Lock()

    def one(job: Callable[[], Any]) -> None:
        barrier.wait()
        outcome = job()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(outcomes)
