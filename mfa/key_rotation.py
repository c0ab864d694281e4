"""Re-encrypt and re-hash stored data under the newest DATA_KEY (`flask --app app data rotate-key`).

The work goes in batches of methods, each batch one transaction committed by the caller, so a
run that stops half-way resumes where it left off; a row already under the newest key is left
as it is, so running it again changes nothing. A batch computes everything before it writes: a
secret that no key in DATA_KEY decrypts stops the run before that batch changes anything.

- methods: the phone number and the TOTP secret are re-encrypted, the phone's keyed hash
  recomputed; a phone app's Web Push subscription (push_devices) goes with its method.
- do-not-call entries and send records hold only a number's keyed hash: they are re-hashed when
  the number is still some method's. Otherwise the number is known to no one and they are left
  under the key they were made with: a do-not-call entry then stops matching once that key
  leaves DATA_KEY (only a later registration of that number would have met it); a send record
  only counts towards the hourly per-number cap.
- left alone: the hashes of texted codes (challenges.code_hash, five minutes' life) and the
  pseudonyms of unknown usernames in the audit log (they only group typing mistakes).
Written against the session only: works with a running service (each change is a
compare-and-set, so a row changed or removed meanwhile is simply not overwritten).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from sqlalchemy import Row, delete, select, update
from sqlalchemy.orm import Session

from models import DoNotCall, EntraSigningKey, Method, PushDevice, SendRecord
from mfa.errors import MfaError
from mfa.unit_of_work import rows_changed
from mfa.vault import Vault

BATCH = 200


class KeyMissing(MfaError):
    code = "key_missing"
    message = "A stored secret cannot be decrypted with any key in DATA_KEY."


@dataclass
class Rotation:
    """The counts of one run, and where it has got to."""
    after: str | None = None  # the last method id done; None before the first batch
    done: bool = False
    methods: int = 0
    secrets_reencrypted: int = 0
    lookups_rehashed: int = 0
    do_not_call_rehashed: int = 0
    send_records_rehashed: int = 0
    do_not_call_left: int = 0
    current_lookups: set[str] = field(default_factory=set)  # every method number's newest hash


def rotate_batch(db: Session, vault: Vault, run: Rotation, size: int = BATCH) -> Rotation:
    """Bring the next `size` methods (by id), and the entries for their numbers, under the newest key."""
    rows = db.execute(
        select(Method.id, Method.phone_encrypted, Method.phone_lookup, Method.totp_secret_encrypted)
        .where(*([Method.id > run.after] if run.after is not None else []))
        .order_by(Method.id).limit(size)
    ).all()
    if not rows:
        run.done = True
        return run
    changes: list[tuple[Row[str, bytes | None, str | None, bytes | None], dict[str, object]]] = []
    newer: dict[str, str] = {}  # a number's hash under an older key -> under the newest
    for row in rows:
        values: dict[str, object] = {}
        if row.phone_encrypted is not None:
            number = _decrypt(vault, row.phone_encrypted, row.id)
            hashes = vault.keyed_hashes(number)
            run.current_lookups.add(hashes[0])
            newer.update((old, hashes[0]) for old in hashes[1:])
            if not vault.is_current(row.phone_encrypted):
                values["phone_encrypted"] = vault.rotate(row.phone_encrypted)
            if row.phone_lookup != hashes[0]:
                values["phone_lookup"] = hashes[0]
        if row.totp_secret_encrypted is not None:
            _decrypt(vault, row.totp_secret_encrypted, row.id)
            if not vault.is_current(row.totp_secret_encrypted):
                values["totp_secret_encrypted"] = vault.rotate(row.totp_secret_encrypted)
        if values:
            changes.append((row, values))
    for row, values in changes:
        updated = rows_changed(db,
            update(Method)
            .where(Method.id == row.id, Method.phone_encrypted == row.phone_encrypted,
                   Method.totp_secret_encrypted == row.totp_secret_encrypted)
            .values(values).execution_options(synchronize_session=False)
        )
        if updated:
            run.secrets_reencrypted += sum(k.endswith("_encrypted") for k in values)
            run.lookups_rehashed += "phone_lookup" in values
    _rotate_subscriptions(db, vault, run, [row.id for row in rows])
    _rehash_entries(db, run, newer)
    run.methods += len(rows)
    run.after = rows[-1].id
    return run


def _rotate_subscriptions(db: Session, vault: Vault, run: Rotation, method_ids: list[str]) -> None:
    """The phone apps' Web Push subscriptions of these methods (decrypted first: a missing key stops here)."""
    rows = db.execute(select(PushDevice.id, PushDevice.method_id, PushDevice.subscription_encrypted).where(
        PushDevice.method_id.in_(method_ids), PushDevice.subscription_encrypted.is_not(None))).all()
    for row in rows:
        _decrypt(vault, row.subscription_encrypted, row.method_id)
    for row in rows:
        if not vault.is_current(row.subscription_encrypted):
            run.secrets_reencrypted += rows_changed(db,
                update(PushDevice)
                .where(PushDevice.id == row.id, PushDevice.subscription_encrypted == row.subscription_encrypted)
                .values(subscription_encrypted=vault.rotate(row.subscription_encrypted))
                .execution_options(synchronize_session=False))


def rotate_entra_keys(db: Session, vault: Vault, run: Rotation) -> Rotation:
    """Our Entra id_token signing keys (a handful, mfa/entra/signing_keys.py), in one go."""
    for key in db.scalars(select(EntraSigningKey)).all():
        try:
            vault.decrypt(key.private_key)
        except InvalidToken:
            raise KeyMissing(f"The Entra signing key {key.kid} cannot be decrypted with any key in DATA_KEY.") from None
        if not vault.is_current(key.private_key):
            key.private_key = vault.rotate(key.private_key)
            run.secrets_reencrypted += 1
    return run


def count_left(db: Session, run: Rotation) -> Rotation:
    """After the last batch: do-not-call entries for numbers no method has (cannot be re-hashed)."""
    run.do_not_call_left = sum(1 for lookup in db.scalars(select(DoNotCall.phone_lookup))
                               if lookup not in run.current_lookups)
    return run


def _decrypt(vault: Vault, token: bytes, method_id: str) -> str:
    try:
        return vault.decrypt(token)
    except InvalidToken:
        raise KeyMissing(f"Method {method_id} cannot be decrypted with any key in DATA_KEY: put back the "
                         "key it was written with (newest first) and run this again.") from None


def _rehash_entries(db: Session, run: Rotation, newer: dict[str, str]) -> None:
    if not newer:
        return
    for entry_id, lookup in db.execute(
            select(DoNotCall.id, DoNotCall.phone_lookup).where(DoNotCall.phone_lookup.in_(list(newer)))).all():
        if db.scalar(select(DoNotCall.id).where(DoNotCall.phone_lookup == newer[lookup])) is not None:
            db.execute(delete(DoNotCall).where(DoNotCall.id == entry_id))  # one entry per number
        else:
            db.execute(update(DoNotCall).where(DoNotCall.id == entry_id).values(phone_lookup=newer[lookup]))
        run.do_not_call_rehashed += 1
    for lookup in db.scalars(select(SendRecord.phone_lookup).distinct()
                             .where(SendRecord.phone_lookup.in_(list(newer)))).all():
        run.send_records_rehashed += rows_changed(db,
            update(SendRecord).where(SendRecord.phone_lookup == lookup).values(phone_lookup=newer[lookup])
            .execution_options(synchronize_session=False))
