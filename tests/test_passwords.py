"""Account passwords: argon2id, upgraded in place when the parameters change."""
from __future__ import annotations

from argon2 import PasswordHasher

from mfa.passwords import DEFAULT_HASHER, Passwords


def test_production_hashes_are_argon2id_with_owasp_parameters():
    stored = Passwords().hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_hash_with_older_parameters_is_replaced_at_the_next_correct_password():
    old = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)).hash("correct horse battery")
    current = Passwords(PasswordHasher(**DEFAULT_HASHER))
    assert current.verify(old, "correct horse battery")
    upgraded = current.rehash_if_needed(old, "correct horse battery")
    assert upgraded != old and current.verify(upgraded, "correct horse battery")
    assert current.rehash_if_needed(upgraded, "correct horse battery") == upgraded


def test_wrong_and_missing_hashes_never_verify():
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    stored = passwords.hash("correct horse battery")
    assert not passwords.verify(stored, "wrong horse battery")
    assert not passwords.verify(None, "correct horse battery")
    assert not passwords.verify("not a hash", "correct horse battery")
