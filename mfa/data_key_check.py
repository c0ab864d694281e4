"""Does DATA_KEY still decrypt what is stored? A sample decrypt of every encrypted column.

A Fernet token does not say which key made it, so the sample takes, per column, the rows most
likely to be under each key: the oldest (written under the oldest key unless rotated since), the
newest (the newest key), and the highest ids (`data rotate-key` goes in id order, so a rotation
that stopped half-way leaves those under the old key). A few rows each and one query per column:
cheap enough for /readyz. `everything` reads every row, for a backup check that can take its time.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from models import EntraSigningKey, Method, PushDevice
from mfa.vault import Vault

PER_END = 3  # rows from each end of each ordering: at most 9 a column
BATCH = 500
DOCS = "docs/backups.md"


@dataclass(frozen=True)
class EncryptedColumn:
    label: str  # plural, as the operator reads it: "TOTP seeds"
    token: Any  # the encrypted column
    key: Any  # the primary key
    created: Any  # when the row was written


COLUMNS = (
    EncryptedColumn("TOTP seeds", Method.totp_secret_encrypted, Method.id, Method.created_at),
    EncryptedColumn("phone numbers", Method.phone_encrypted, Method.id, Method.created_at),
    EncryptedColumn("push subscriptions", PushDevice.subscription_encrypted, PushDevice.id, PushDevice.created_at),
    EncryptedColumn("Entra signing keys", EntraSigningKey.private_key, EntraSigningKey.kid,
                    EntraSigningKey.created_at),
)


@dataclass(frozen=True)
class Tally:
    label: str
    checked: int
    failed: int  # no key in DATA_KEY decrypts them
    older: int  # decrypted, but by a key after the newest (`data rotate-key` would move them)


@dataclass(frozen=True)
class KeyCheck:
    tallies: tuple[Tally, ...]
    sampled: bool = True

    @property
    def ok(self) -> bool:
        return not any(t.failed for t in self.tallies)

    @property
    def checked(self) -> int:
        return sum(t.checked for t in self.tallies)

    def summary(self) -> str:
        """'TOTP seeds: 3 of 3 decrypted; phone numbers: 2 of 4 decrypted' (columns holding nothing left out)."""
        parts = []
        for t in self.tallies:
            if t.checked:
                older = f" ({t.older} under an older key)" if t.older else ""
                parts.append(f"{t.label}: {t.checked - t.failed} of {t.checked} decrypted{older}")
        return "; ".join(parts) or "nothing encrypted to check"

    def problem(self) -> str | None:
        """The one line naming DATA_KEY, or None when every secret checked decrypts."""
        if self.ok:
            return None
        failing, sampled = [], " sampled" if self.sampled else ""
        for t in self.tallies:
            if t.failed:  # "3 of 3 sampled TOTP seeds, 2 of 2 phone numbers"
                failing.append(f"{t.failed} of {t.checked}{sampled} {t.label}")
                sampled = ""
        if any(t.failed < t.checked for t in self.tallies):  # the newest key works, an older one is gone
            advice = "an older key is missing from DATA_KEY; add it after the newest"
        else:
            advice = ("DATA_KEY is not the key they were written with, or lacks an older key; "
                      "list every key still in use, newest first")
        return f"DATA_KEY cannot decrypt stored secrets ({', '.join(failing)}): {advice} (see {DOCS})."


def sample(db: Session, vault: Vault, per_end: int = PER_END) -> KeyCheck:
    return KeyCheck(tuple(_tally(vault, c, _sample_tokens(db, c, per_end)) for c in COLUMNS))


def everything(db: Session, vault: Vault, batch: int = BATCH) -> KeyCheck:
    return KeyCheck(tuple(_tally(vault, c, _all_tokens(db, c, batch)) for c in COLUMNS), sampled=False)


def _tally(vault: Vault, column: EncryptedColumn, tokens: Iterable[bytes]) -> Tally:
    checked = failed = older = 0
    for token in tokens:
        checked += 1
        try:
            vault.decrypt(token)
        except InvalidToken:
            failed += 1
            continue
        older += not vault.is_current(token)
    return Tally(column.label, checked, failed, older)


def _sample_tokens(db: Session, column: EncryptedColumn, per_end: int) -> list[bytes]:
    present = select(column.key, column.token).where(column.token.is_not(None))
    ends = (present.order_by(column.created.asc(), column.key.asc()),
            present.order_by(column.created.desc(), column.key.desc()),
            present.order_by(column.key.desc()))
    rows = db.execute(union_all(*(select(end.limit(per_end).subquery()) for end in ends))).all()
    return list({key: token for key, token in rows}.values())  # a row in two orderings counts once


def _all_tokens(db: Session, column: EncryptedColumn, batch: int) -> Iterator[bytes]:
    after = None
    while True:
        rows = db.execute(select(column.key, column.token)
                          .where(column.token.is_not(None), *([column.key > after] if after is not None else []))
                          .order_by(column.key).limit(batch)).all()
        yield from (token for _key, token in rows)
        if len(rows) < batch:
            return
        after = rows[-1][0]
