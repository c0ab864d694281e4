"""The registry of method types: the one place that knows which types exist.

`method_type("sms")` or `method_type(method)` gives the type's object (see base.py for its
hooks). A stored type this server does not offer is refused as not available.
"""
from __future__ import annotations

from models import Challenge, Method
from mfa.errors import Unprocessable
from mfa.method_types.app_code import AppCode
from mfa.method_types.base import OK, REPLAYED_CODE, WRONG_CODE, MethodType
from mfa.method_types.call import Call
from mfa.method_types.push import PushApp
from mfa.method_types.text import Text

REGISTRY: dict[str, MethodType] = {t.name: t for t in (AppCode(), Text(), Call(), PushApp())}

__all__ = ["ON_DEVICE", "OK", "REGISTRY", "REPLAYED_CODE", "WRONG_CODE", "AppCode", "Call", "MethodType", "PushApp",
           "Text", "method_type", "offered", "phone_deliveries", "types_where"]


def method_type(of: str | Method | Challenge) -> MethodType:
    name = of if isinstance(of, str) else of.type
    found = REGISTRY.get(name)
    if found is None:
        raise Unprocessable(f"Verification by {name} is not available on this server.",
                            code="method_not_available")
    return found


def offered(method: Method) -> bool:
    """Whether this server offers the method's type: a stored method of another type (one a
    later release may add) is passed over, never allowed to stop the person's other methods working."""
    return method.type in REGISTRY


def phone_deliveries() -> list[MethodType]:
    """The types a registered phone can be proven and used with (text, call)."""
    return [t for t in REGISTRY.values() if t.is_phone_delivery]


def types_where(**hooks: object) -> tuple[str, ...]:
    """Names of the types whose hooks have these values, for SQL filters: types_where(ends_by_hanging_up=True)."""
    return tuple(t.name for t in REGISTRY.values() if all(getattr(t, k) == v for k, v in hooks.items()))


ON_DEVICE = types_where(approved_on_device=True)  # answered on a phone app: only the server ends them
