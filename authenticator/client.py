"""One enrolment of this device with one server: enrol, list, approve and deny, all signed."""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from authenticator import signing, state

DEFAULT_TIMEOUT = 10.0
API = "/device/v1"
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class DeviceError(Exception):
    """Anything that stops a device command; the message is one line for people."""


class NetworkError(DeviceError):
    """The server could not be reached or gave no usable answer."""


class Refused(DeviceError):
    """The server answered non-2xx: `code` and `message` come from its {"error", "message"} body."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status


def parse_enrolment_url(url: str) -> tuple[str, str]:
    """(base URL, token) from `{base}/app#enrol={token}`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DeviceError(f"not an enrolment URL (http or https expected): {url!r}")
    if not parts.path.rstrip("/").endswith("/app") or not parts.fragment.startswith("enrol="):
        raise DeviceError(f"not an enrolment URL (…/app#enrol=TOKEN expected): {url!r}")
    token = parts.fragment[len("enrol="):]
    if not token:
        raise DeviceError("the enrolment URL has an empty token")
    base_path = parts.path.rstrip("/")[: -len("/app")]
    return f"{parts.scheme}://{parts.netloc}{base_path}", token


class Device:
    """This device as enrolled with one server (`base_url`), signing with `private_key`."""

    def __init__(self, base_url: str, device_id: str, private_key: ec.EllipticCurvePrivateKey, *,
                 session: requests.Session | None = None, timeout: float = DEFAULT_TIMEOUT,
                 service: str = "", username: str = "", name: str = "",
                 now: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_id = device_id
        self.private_key = private_key
        self.session = session or requests.Session()
        self.timeout = timeout
        self.service, self.username, self.name = service, username, name
        self.now = now  # the clock requests are signed with (a test's fixed clock)

    # -- construction -------------------------------------------------------------------------------------

    @classmethod
    def enrol(cls, url: str, name: str, state_path: str | os.PathLike[str] | None,
              subscription: dict[str, Any] | None = None, *, session: requests.Session | None = None,
              timeout: float = DEFAULT_TIMEOUT, now: Callable[[], float] = time.time) -> Device:
        """Enrol with a fresh key from an enrolment URL; adds the enrolment to `state_path` (if given)."""
        base_url, token = parse_enrolment_url(url)
        if state_path is not None:
            state.load_state(state_path)  # a corrupt state file must not cost the single-use token
        device = cls(base_url, "", signing.new_private_key(), session=session, timeout=timeout, name=name,
                     now=now)
        public_key = signing.public_key_b64(device.private_key)
        answer = device.call("POST", "/enrol", {"token": token, "public_key": public_key, "name": name,
                                                "subscription": subscription})
        if not isinstance(answer.get("device_id"), str) or not answer["device_id"]:
            raise NetworkError(f"{base_url} answered the enrolment without a device id")
        device.device_id = answer["device_id"]
        device.service = str(answer.get("service") or "")
        device.username = str(answer.get("username") or "")
        if state_path is not None:
            data = state.load_state(state_path)
            data["enrolments"].append(device.record())
            state.save_state(state_path, data)
        return device

    @classmethod
    def from_record(cls, record: dict[str, Any], *, session: requests.Session | None = None,
                    timeout: float = DEFAULT_TIMEOUT) -> Device:
        return cls(str(record["base_url"]), str(record["device_id"]), state.key_from_pem(str(record["private_key"])),
                   session=session, timeout=timeout, service=str(record.get("service") or ""),
                   username=str(record.get("username") or ""), name=str(record.get("name") or ""))

    @classmethod
    def load_all(cls, state_path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> list[Device]:
        return [cls.from_record(r, timeout=timeout) for r in state.load_state(state_path)["enrolments"]]

    def record(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "device_id": self.device_id, "name": self.name, "service": self.service,
                "username": self.username, "private_key": state.key_to_pem(self.private_key)}

    # -- the protocol -------------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return self.call("GET", "/config", None, signed=False)

    def pending(self) -> list[dict[str, Any]]:
        requests_ = self.call("GET", "/requests").get("requests")
        if not isinstance(requests_, list):
            raise NetworkError(f"{self.base_url} answered without a list of requests")
        return requests_

    def approve(self, request_id: str, number: str | int) -> dict[str, Any]:
        return self.call("POST", f"/requests/{checked_id(request_id)}/approve", {"number": str(number)})

    def deny(self, request_id: str, fraud: bool = False) -> dict[str, Any]:
        return self.call("POST", f"/requests/{checked_id(request_id)}/deny", {"fraud": fraud})

    def set_subscription(self, subscription: dict[str, Any] | None) -> dict[str, Any]:
        return self.call("PUT", "/subscription", {"subscription": subscription})

    # -- transport ----------------------------------------------------------------------------------------

    def call(self, method: str, endpoint: str, payload: Any = None, *, signed: bool = True) -> dict[str, Any]:
        """Send one request under /device/v1 and return its JSON answer; Refused on non-2xx."""
        body = b"" if method == "GET" else json.dumps(payload, separators=(",", ":")).encode("utf-8")
        url = f"{self.base_url}{API}{endpoint}"
        path = urlsplit(url).path
        headers = {"Accept": "application/json"}
        if body:
            headers["Content-Type"] = "application/json"
        if signed:
            headers.update(signing.sign_request(self.private_key, method, path, body, self.device_id,
                                                now=int(self.now())))
        try:
            response = self.session.request(method, url, data=body or None, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise NetworkError(f"cannot reach {self.base_url}: {type(exc).__name__}") from exc
        return answer_of(response)


def checked_id(request_id: str) -> str:
    """Ids go into the path as they are: refuse anything that could change the path (/, ?, %)."""
    if not REQUEST_ID.fullmatch(request_id):
        raise DeviceError(f"not a request id: {request_id!r}")
    return request_id


def answer_of(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if 200 <= response.status_code < 300:
        if not isinstance(data, dict):
            raise NetworkError(f"{response.url} answered {response.status_code} without a JSON object")
        return data
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise Refused(data["error"], str(data.get("message") or ""), response.status_code)
    raise Refused(f"http_{response.status_code}", response.reason or "", response.status_code)
