"""Request bodies: a JSON object of UTF-8 text, shallow enough to parse safely, or 400.

Python's json parser recurses once per level, so a body of 1,000 nested brackets would end
in RecursionError (a 500). The depth is checked on the text first, without recursion.
"""
from __future__ import annotations

import json

from mfa.errors import BadRequest

# Our bodies are flat objects; 20 leaves room for any relying application's extras.
MAX_DEPTH = 20

NOT_AN_OBJECT = "The body must be a JSON object (Content-Type: application/json)."


def parse_object(is_json: bool, raw: bytes) -> dict:
    if not is_json:
        raise BadRequest(NOT_AN_OBJECT)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The body must be UTF-8 text.") from None
    if nesting_exceeds(text, MAX_DEPTH):
        raise BadRequest(f"The body is nested more than {MAX_DEPTH} levels deep.")
    try:
        body = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # RecursionError: belt and braces behind the depth check
        raise BadRequest(NOT_AN_OBJECT) from None
    if not isinstance(body, dict):
        raise BadRequest(NOT_AN_OBJECT)
    return body


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (the text need not be valid)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case: too few brackets to be too deep
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")
