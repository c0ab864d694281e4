"""The people the tests sign in as, and their numbers: one definition each.

conftest.py makes each persona a fixture; tests name them as parameters (`alice`, `bob`, ...).
"""
from __future__ import annotations

from typing import Any

from mfa import accounts
from models import User

PASSWORD = "correct horse battery staple"
ALICE = "+447400111222"  # alice's verified mobile
MOBILE = "+447400123456"  # the mobile bob registers (or is given) in tests


def person(run: Any, username: str, **kwargs: Any) -> User:
    """A person with PASSWORD and no methods; `kwargs` as accounts.create_user takes them."""
    return run(lambda db, svc: accounts.create_user(db, svc, username, PASSWORD, **kwargs))


def alice(run: Any) -> User:
    """An administrator in England with a verified mobile (texts and calls)."""
    from tests.helpers import add_phone

    user = person(run, "alice", role="admin", region="england")
    add_phone(run, user, ALICE, "mobile", types=("voice", "sms"))
    return user


def bob(run: Any) -> User:
    """An administrator in England who has not registered any method yet."""
    return person(run, "bob", role="admin", region="england")


def carol(run: Any) -> User:
    """An administrator in England with a hybrid mailbox."""
    return person(run, "carol", role="admin", region="england", hybrid=True)


def dave(run: Any) -> User:
    """An ordinary user in Wales: policy needs no second factor."""
    return person(run, "dave", role="user", region="wales")
