"""Limits that hold under races, and no lock held while the provider is called.

Twenty requests released together (threading.Barrier), each in its own session and
connection, stop exactly at each cap: the person's row is locked (and the number's
advisory lock taken) before counting. True concurrency needs PostgreSQL; on SQLite
those tests are skipped with the reason printed (pytest -rs).
"""
from __future__ import annotations

import os
import sqlite3

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from mfa import accounts, app_passwords, challenges, checks
from mfa.app_passwords import MAX_PER_USER
from mfa.limits import SENDS_PER_NUMBER, SENDS_PER_PERSON, Limits
from mfa.errors import MfaError
from mfa.locks import number_key
from mfa.unit_of_work import Transactions, use_case
from models import AppPassword, Challenge, SendRecord, User
from tests.conftest import PASSWORD
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone, run_together, start_sign_in

NUMBER = "+447400123456"
MAX_SENDS_PER_USER_HOUR = Limits().number(SENDS_PER_PERSON)
MAX_SENDS_PER_NUMBER_HOUR = Limits().number(SENDS_PER_NUMBER)
WAYS = 20
postgres_only = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="concurrent row locks need PostgreSQL: set TEST_DATABASE_URL to run the 20-way races",
)


def person(run, username: str, number: str = NUMBER):
    """An administrator with a verified mobile; returns (user, id of its text method)."""
    user = run(lambda db, svc: accounts.create_user(db, svc, username, PASSWORD, role="admin", region="england"))
    sms_id, _voice_id = add_phone(run, user, number, types=("sms", "voice"))
    return user, sms_id


def all_at_once(runtime, jobs) -> list[str]:
    """Each job in its own thread and session, all released together; their outcomes."""
    def in_a_session(job):
        def run() -> str:
            with runtime.sessions() as session:
                try:
                    job(session)
                    return "ok"
                except MfaError as refusal:
                    return refusal.code
                except Exception as crash:  # noqa: BLE001 - a crash is an outcome the test must show
                    return f"crash {crash!r}"
        return run
    return run_together([in_a_session(job) for job in jobs])


def count(runtime, model, *where) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


@postgres_only
def test_twenty_simultaneous_texts_for_one_person_stop_exactly_at_the_per_person_cap(runtime, run):
    fake = FakeTelephony()
    svc = use_fake(runtime, fake)
    user, mobile = person(run, "bob")
    # Half the sign-ins text a second phone: the per-number cap (10) must not be what stops them.
    alternate, _ = add_phone(run, user, "+447400654321", kind="alternate", types=("sms", "voice"))
    sign_ins = [(start_sign_in(run, "bob")["id"], mobile if i % 2 else alternate) for i in range(WAYS)]
    outcomes = all_at_once(runtime, [
        lambda s, a=auth_id, m=method_id: challenges.start_challenge(Transactions(s), svc, a, m, "127.0.0.1")
        for auth_id, method_id in sign_ins
    ])
    capped = WAYS - MAX_SENDS_PER_USER_HOUR
    assert outcomes == ["ok"] * MAX_SENDS_PER_USER_HOUR + ["rate_limited"] * capped
    assert len(fake.texts) == MAX_SENDS_PER_USER_HOUR == count(runtime, SendRecord)


@postgres_only
def test_twenty_people_texting_one_number_at_once_stop_exactly_at_the_per_number_cap(runtime, run):
    fake = FakeTelephony()
    svc = use_fake(runtime, fake)
    jobs = []
    for i in range(WAYS):
        _, sms_id = person(run, f"person{i}")
        auth_id = start_sign_in(run, f"person{i}")["id"]
        jobs.append(lambda s, a=auth_id, m=sms_id: challenges.start_challenge(Transactions(s), svc, a, m, "127.0.0.1"))
    outcomes = all_at_once(runtime, jobs)
    capped = WAYS - MAX_SENDS_PER_NUMBER_HOUR
    assert outcomes == ["ok"] * MAX_SENDS_PER_NUMBER_HOUR + ["rate_limited"] * capped
    assert len(fake.texts) == MAX_SENDS_PER_NUMBER_HOUR == count(runtime, SendRecord)


@postgres_only
def test_twenty_simultaneous_app_passwords_stop_exactly_at_forty(runtime, run):
    user, _ = person(run, "bob")
    for i in range(30):
        run(lambda db, svc, i=i: app_passwords.create(db, svc, db.get(User, user.id), f"mail {i}"))

    def create(session):
        with use_case(session):
            app_passwords.create(session, runtime.services, session.get(User, user.id), "at once")

    outcomes = all_at_once(runtime, [create] * WAYS)
    assert outcomes == ["ok"] * 10 + ["too_many_app_passwords"] * 10
    assert count(runtime, AppPassword, AppPassword.revoked_at.is_(None)) == MAX_PER_USER


def test_no_transaction_or_lock_is_held_while_the_provider_sends(runtime, run):
    """While the text is being sent, another connection can lock the person and the sign-in
    at once (NOWAIT), and already sees the reserved challenge committed as "sending"."""
    user, sms_id = person(run, "bob")
    auth_id = start_sign_in(run, "bob")["id"]
    seen: list[str] = []
    svc = use_fake(runtime, FakeTelephony(during=lambda _what, _sid: seen.append(
        _from_another_connection(runtime, auth_id, user.id))))
    with runtime.sessions() as session:
        challenge = challenges.start_challenge(Transactions(session), svc, auth_id, sms_id, "127.0.0.1")
    assert seen == ["sending"]
    assert count(runtime, Challenge, Challenge.id == challenge.id, Challenge.status == "pending",
                 Challenge.provider_sid.is_not(None)) == 1


def _from_another_connection(runtime, auth_id: str, user_id: str) -> str:
    """The reserved challenge's status, or "locked" if the sign-in, person or number are held."""
    engine = runtime.engine
    if engine.dialect.name == "sqlite":
        raw = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
        try:
            raw.execute("BEGIN IMMEDIATE")  # fails at once if a writer holds the database
            status = raw.execute("SELECT status FROM challenges WHERE authentication_id = ?",
                                 (auth_id,)).fetchone()[0]
            raw.execute("ROLLBACK")
            return status
        except sqlite3.OperationalError:
            return "locked"
        finally:
            raw.close()
    key = number_key(runtime.services, NUMBER)
    with engine.connect() as conn:
        try:
            with conn.begin():
                conn.execute(text("SELECT id FROM users WHERE id = :id FOR UPDATE NOWAIT"), {"id": user_id})
                conn.execute(text("SELECT id FROM authentications WHERE id = :id FOR UPDATE NOWAIT"),
                             {"id": auth_id})
                if not conn.execute(select(func.pg_try_advisory_xact_lock(key))).scalar():
                    return "locked"
                return conn.execute(text("SELECT status FROM challenges WHERE authentication_id = :id"),
                                    {"id": auth_id}).scalar()
        except OperationalError:
            return "locked"


@postgres_only
@pytest.mark.parametrize("code", ["wrong", "right"])
def test_sends_racing_with_typed_codes_on_one_sign_in_never_deadlock(runtime, run, clock, code):
    """A send locks the person, then the sign-in; counting a wrong code or approving (which
    resets the person's failures) must take them in the same order, or PostgreSQL aborts one."""
    fake = FakeTelephony()
    svc = use_fake(runtime, fake)
    user, sms_id = person(run, "bob")
    crashes = []
    for _ in range(8):
        run(lambda db, svc: setattr(db.get(User, user.id), "failed_count", 3))
        auth_id = start_sign_in(run, "bob")["id"]
        with runtime.sessions() as s:
            challenges.start_challenge(Transactions(s), svc, auth_id, sms_id, "127.0.0.1")
        typed = fake.texts[-1][1] if code == "right" else "0000000"
        clock.advance(30)

        def check(session, auth_id=auth_id, typed=typed):
            with use_case(session):
                checks.check_code(session, svc, auth_id, typed, "127.0.0.1")

        def send(session, auth_id=auth_id):
            challenges.start_challenge(Transactions(session), svc, auth_id, sms_id, "127.0.0.1")

        crashes += [o for o in all_at_once(runtime, [check, send] * 5) if o.startswith("crash")]
        clock.advance(minutes=61)
        run(lambda db, svc: accounts.unlock(db, svc, "bob"))
    assert crashes == []
