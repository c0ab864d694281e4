"""The state file: device keys, enrolments and the push listener's keys, as JSON.

Shape: {"version": 1, "enrolments": [{"base_url", "device_id", "private_key" (PKCS#8 PEM), "name",
"service", "username"}], "push": {"endpoint", "private_key", "auth"} | null}. Written atomically
(temporary file, then rename) with mode 0600: it holds private keys.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

VERSION = 1


class StateError(Exception):
    """The state file is unreadable or not what this program writes."""


def empty_state() -> dict[str, Any]:
    return {"version": VERSION, "enrolments": [], "push": None}


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state in `path`, or an empty one when the file does not exist yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty_state()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read state file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError(f"state file {path} is not valid JSON") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("enrolments"), list):
        raise StateError(f"state file {path} is not an authenticator state (version {VERSION})")
    required = {"base_url", "device_id", "private_key"}
    if not all(isinstance(e, dict) and required <= e.keys() for e in data["enrolments"]):
        raise StateError(f"state file {path} has a malformed enrolment")
    push = data.setdefault("push", None)
    if push is not None and not (isinstance(push, dict) and all(isinstance(push.get(k), str)
                                                                for k in ("endpoint", "private_key", "auth"))):
        raise StateError(f"state file {path} has a malformed push listener record")
    return data


def save_state(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def key_from_pem(pem: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise StateError("state file holds an unreadable private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise StateError("state file holds a key that is not ECDSA P-256")
    return key
