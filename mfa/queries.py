"""Look-ups that several domain modules share, so none reaches into another for them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from models import Authentication, Challenge, DoNotCall
from mfa.vault import Vault, phone_lookup_matches

# A webhook about a challenge (a call's turn, a text's delivery report) needs the challenge,
# its sign-in, the person and the method: loaded with these options, one query.
CHALLENGE_WITH_CONTEXT = [
    joinedload(Challenge.authentication).joinedload(Authentication.user),
    joinedload(Challenge.method),
]


def on_do_not_call_list(db: Session, vault: Vault, number: str) -> bool:
    """Whoever answers `number` asked not to be called again (under any current data key)."""
    found = select(DoNotCall.id).where(phone_lookup_matches(DoNotCall.phone_lookup, vault, number))
    return db.scalar(found) is not None


def do_not_call_since(db: Session, vault: Vault, number: str) -> datetime | None:
    """When whoever answers `number` pressed 9 (asked not to be called again); None if no one did."""
    return db.scalar(select(DoNotCall.created_at).where(phone_lookup_matches(DoNotCall.phone_lookup, vault, number)))
