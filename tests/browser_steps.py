"""A browser's steps through the sign-in pages, with a Flask test client as the browser.

Two test clients are two browsers; copying a cookie from one to the other is a replay.
"""
from __future__ import annotations

import re
from typing import Any

from tests.helpers import pyotp_code
from tests.personas import PASSWORD

COOKIE = "session"


def csrf_token(client: Any, path: str = "/sign-in") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, "no CSRF token on " + path
    return found.group(1)


def post_form(client: Any, path: str, data: dict | None = None, token_from: str = "/sign-in", **kwargs: Any) -> Any:
    """Post with the CSRF token of `token_from` (the sign-in page unless told)."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_from), **(data or {})}, **kwargs)


def password_step(client: Any, username: str, next_url: str | None = None) -> Any:
    data = {"username": username, "password": PASSWORD}
    if next_url is not None:
        data["next"] = next_url
    return post_form(client, "/sign-in", data)


def app_step(client: Any, secret: str, clock: Any) -> Any:
    """Submit the app code on /verify; the browser then follows to wherever the page sends it."""
    return post_form(client, "/verify/code", {"code": pyotp_code(secret, clock.now())}, token_from="/verify")


def cookie(client: Any) -> str | None:
    found = client.get_cookie(COOKIE)
    return found.value if found else None


def replay(cookie_value: str | None, app: Any) -> Any:
    """Another browser holding a copy of the cookie."""
    other = app.test_client()
    if cookie_value is not None:
        other.set_cookie(COOKIE, cookie_value)
    return other


def signed_in(client: Any) -> bool:
    response = client.get("/account")
    return response.status_code == 200 and "Sign out" in response.get_data(as_text=True)
