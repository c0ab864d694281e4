"""Small helpers the tests share."""
from __future__ import annotations

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
