"""What each command line verb does, over every enrolment in the state file."""
from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from authenticator import state
from authenticator.client import Device, DeviceError, Refused
from authenticator.push_endpoint import LocalPushEndpoint, PushKeys

LISTED_FIELDS = ("id", "service", "app", "created_at", "expires_at", "source_ip")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeviceError(f"not an http(s) URL for the push listener: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def push_record_for(state_path: str, listener_url: str) -> dict[str, Any]:
    """The state's push listener (keys + endpoint) at `listener_url`'s origin, made and saved when new.

    One listener serves every enrolment of a state file, so its keys are reused while the origin stays.
    """
    data = state.load_state(state_path)
    origin = origin_of(listener_url)
    record = data.get("push")
    if not (isinstance(record, dict) and origin_of(str(record.get("endpoint", ""))) == origin):
        record = {"endpoint": f"{origin}/push/{secrets.token_urlsafe(16)}", **PushKeys().record()}
        data["push"] = record
        state.save_state(state_path, data)
    return record


def subscription_of(record: dict[str, Any]) -> dict[str, Any]:
    return {"endpoint": record["endpoint"], "keys": PushKeys.from_record(record).public_keys()}


def enrol(state_path: str, url: str, name: str, push_endpoint: str | None, timeout: float) -> None:
    subscription = subscription_of(push_record_for(state_path, push_endpoint)) if push_endpoint else None
    device = Device.enrol(url, name, state_path, subscription, timeout=timeout)
    print(f"enrolled with {device.service or device.base_url} as {device.username or '?'}")
    print(device.device_id)


def devices(state_path: str, timeout: float) -> list[Device]:
    found = Device.load_all(state_path, timeout=timeout)
    if not found:
        raise DeviceError(f"no enrolments in {state_path}: run enrol first")
    return found


def pending(state_path: str, timeout: float) -> None:
    failures = []
    for device in devices(state_path, timeout):
        try:
            listed = device.pending()
        except DeviceError as exc:
            failures.append(f"{device.base_url}: {exc}")
            continue
        for request in listed:
            print(json.dumps({key: request.get(key) for key in LISTED_FIELDS}), flush=True)
    if failures:
        raise DeviceError("; ".join(failures))


def holder_of(request_id: str, candidates: list[Device]) -> list[Device]:
    """The enrolments to ask, best first: the one listing the request, else all (a 404 moves on)."""
    if len(candidates) == 1:
        return candidates
    for device in candidates:
        try:
            if any(r.get("id") == request_id for r in device.pending()):
                return [device]
        except DeviceError:
            continue
    return candidates


def answer(state_path: str, request_id: str, timeout: float, act: Callable[[Device], dict[str, Any]]) -> None:
    last: DeviceError | None = None
    for device in holder_of(request_id, devices(state_path, timeout)):
        try:
            result = act(device)
        except Refused as exc:
            if exc.status != 404:
                raise
            last = exc
            continue
        print(result.get("status", "ok"))
        return
    raise last or DeviceError(f"unknown request id {request_id!r}")


def listen(state_path: str, port: int | None, count: int | None, timeout: float) -> None:
    """Serve the state's push endpoint and print each payload; a new endpoint is sent to every server."""
    data = state.load_state(state_path)
    record = data.get("push") if isinstance(data.get("push"), dict) else None
    keys = PushKeys.from_record(record) if record else PushKeys()
    path = urlsplit(record["endpoint"]).path if record else None
    stored_port = urlsplit(record["endpoint"]).port if record else None
    with LocalPushEndpoint(port if port is not None else (stored_port or 0), keys, path) as endpoint:
        if not record or record["endpoint"] != endpoint.endpoint:
            data["push"] = {"endpoint": endpoint.endpoint, **keys.record()}
            state.save_state(state_path, data)
            for device in Device.load_all(state_path, timeout=timeout):
                device.set_subscription(endpoint.subscription())
        print(f"listening on {endpoint.endpoint}", file=sys.stderr, flush=True)
        serve(endpoint, count)


def serve(endpoint: LocalPushEndpoint, count: int | None) -> None:
    shown_rejections = 0
    while count is None or len(endpoint.received) < count:
        try:
            print(json.dumps(endpoint.wait_for_message(timeout=0.5)), flush=True)
        except TimeoutError:
            pass
        for status, reason in endpoint.rejected[shown_rejections:]:
            print(f"refused a push: {status} {reason}", file=sys.stderr, flush=True)
        shown_rejections = len(endpoint.rejected)
