"""A sign-in under way and its challenges are locked in one order: its challenges, the person, the sign-in.

A call's `#` claims its challenge (calls.claim, ending the rest), locks the person when it resets
their failures, and then finishes the sign-in. Anything else that ends a sign-in under way (expiry,
a typed code approving it, the last wrong code allowed) must take those rows in the same order:
taken in another, two transactions can each hold a row the other waits for, and PostgreSQL aborts
one ("deadlock detected": a failed request). Before the fix, 5 to 16 rounds in 20 deadlocked.
True concurrency needs PostgreSQL; on SQLite these tests are skipped with the reason (pytest -rs).
"""
from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mfa import accounts, authentications, calls, cancellation, challenges, checks, lockout
from mfa.clock import FixedClock
from mfa.errors import MfaError
from mfa.limits import CODE_ATTEMPTS, LOCKOUT_THRESHOLD as FAILURES, Limits
from mfa.unit_of_work import Transactions, use_case
from models import AuditEvent, Authentication, Challenge, Method, User
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone, pyotp_code, start_sign_in

ROUNDS = 20
NUMBER = "+447400123456"
postgres_only = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="concurrent row locks need PostgreSQL: set TEST_DATABASE_URL to run the lock-order races",
)


def race(runtime, jobs: dict) -> dict[str, object]:
    """Each job in its own thread and session, released together; what each returned, its
    refusal's code, or "crash ..." (a deadlock is one)."""
    barrier = threading.Barrier(len(jobs))
    results: dict[str, object] = {}

    def one(name, job):
        with runtime.sessions() as session:
            barrier.wait()
            try:
                with use_case(session):
                    results[name] = job(session)
            except MfaError as refusal:
                results[name] = refusal.code
            except Exception as crash:  # noqa: BLE001 - a crash is an outcome the test must show
                results[name] = crashed(crash)

    threads = [threading.Thread(target=one, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def crashed(crash: Exception) -> str:
    """A crash in a few words: a deadlock says which table its victim was waiting for."""
    cause = getattr(crash, "orig", None) or crash
    where = re.search(r'(?:updating|locking) tuple \S+ in relation "(\w+)"', str(cause))
    return f"crash {type(cause).__name__}" + (f" on {where.group(1)}" if where else f" {cause!r}")


def call_for(runtime, svc, auth_id: str, voice_id: str) -> tuple[str, str | None]:
    """A verification call ringing for the sign-in: its challenge id and CallSid."""
    with runtime.sessions() as s:
        challenge = challenges.start_challenge(Transactions(s), svc, auth_id, voice_id, "127.0.0.1")
        return challenge.id, challenge.provider_sid


def ending(run, auth_id: str, user_id: str, since: int) -> tuple[str, str, str, int]:
    """The sign-in's status and reason, its call's status, and the sign-in endings audited since `since`."""
    def read(db, svc):
        auth = db.get(Authentication, auth_id)
        call = db.scalars(select(Challenge).where(Challenge.authentication_id == auth_id)).one()
        return auth.status, auth.reason, call.status, sign_in_events(db, user_id) - since
    return run(read)


def summary(results: dict[str, object], now: tuple[str, str, str, int]) -> str:
    """One round in a line, so a failure shows how often each outcome came."""
    said = " ".join(f"{name}={said}" for name, said in sorted(results.items()))
    return f"{said} | {now[0]} {now[1]}, call {now[2]}, {now[3]} audited"


def tally(seen: list[str]) -> str:
    return "\n".join(f"{n:3} x {line}" for line, n in Counter(seen).most_common())


def sign_in_events(db, user_id: str) -> int:
    return db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.user_id == user_id, AuditEvent.event == "sign_in"))


def voice_of(run, user_id: str) -> str:
    return run(lambda db, svc: db.scalars(select(Method.id).where(Method.user_id == user_id,
                                                                  Method.type == "voice")).one())


def two_phones_to_call(run, person) -> list[str]:
    """Two voice methods, so two sign-ins of one person can each have a call ringing."""
    add_phone(run, person, NUMBER, types=("voice",))
    add_phone(run, person, "+447400654321", types=("voice",))
    return run(lambda db, svc: db.scalars(select(Method.id).where(
        Method.user_id == person.id, Method.type == "voice").order_by(Method.created_at, Method.id)).all())


@postgres_only
def test_a_sign_in_expiring_as_its_hash_key_arrives_never_deadlocks_and_one_wins(runtime, run, clock, alice):
    """The `#` webhook a second before the sign-in's end, a page asking about it a second after
    (two servers' clocks): the webhook claims the call then finishes the sign-in, the expiry finishes
    the sign-in then ends its calls. Whichever comes first decides; the other changes nothing."""
    svc = use_fake(runtime, FakeTelephony())
    voice = voice_of(run, alice.id)
    seen: list[str] = []
    for _ in range(ROUNDS):
        auth_id = start_sign_in(run, "alice")["id"]
        clock.advance(minutes=9)  # the call is asked for late: it rings until the sign-in's end
        challenge_id, sid = call_for(runtime, svc, auth_id, voice)
        expires_at = run(lambda db, svc, a=auth_id: db.get(Authentication, a).expires_at)
        before = dataclasses.replace(svc, clock=FixedClock(expires_at - timedelta(seconds=1)))
        after = dataclasses.replace(svc, clock=FixedClock(expires_at + timedelta(seconds=1)))
        since = run(lambda db, svc: sign_in_events(db, alice.id))

        results = race(runtime, {
            "hash": lambda s, c=challenge_id, sid=sid, at=before: calls.keys_pressed(s, at, c, sid, "#").outcome,
            "expiry": lambda s, a=auth_id, at=after: str(authentications.get(s, at, a).status),
        })
        seen.append(summary(results, ending(run, auth_id, alice.id, since)))
        clock.advance(minutes=2)
    # Every round: exactly one wins, nothing crashes. (Which one wins is up to the database.)
    assert set(seen) <= {
        "expiry=approved hash=verified | approved verified, call approved, 1 audited",
        "expiry=expired hash=goodbye | expired timed_out, call ended, 1 audited",
    }, tally(seen)


@postgres_only
@pytest.mark.parametrize("failures", [0, 3], ids=["no_failures", "earlier_failures"])
def test_an_app_code_and_a_hash_key_at_the_same_moment_never_deadlock_and_one_wins(
        runtime, run, clock, totp_bob, bob, failures):
    """The app code approves the sign-in and ends its call; the `#` claims the call and approves the
    sign-in. With earlier failures both also reset the person's count (they lock the person too)."""
    svc = use_fake(runtime, FakeTelephony())
    add_phone(run, bob, NUMBER, types=("voice",))
    voice = voice_of(run, bob.id)
    seen: list[str] = []
    for _ in range(ROUNDS):
        run(lambda db, svc: setattr(db.get(User, bob.id), "failed_count", failures))
        auth_id = start_sign_in(run, "bob")["id"]
        challenge_id, sid = call_for(runtime, svc, auth_id, voice)
        code = pyotp_code(totp_bob, clock.now())
        since = run(lambda db, svc: sign_in_events(db, bob.id))

        results = race(runtime, {
            "hash": lambda s, c=challenge_id, sid=sid: calls.keys_pressed(s, svc, c, sid, "#").outcome,
            "code": lambda s, a=auth_id, code=code: str(checks.check_code(s, svc, a, code, "127.0.0.1").status),
        })
        failed = run(lambda db, svc: db.get(User, bob.id).failed_count)
        seen.append(summary(results, ending(run, auth_id, bob.id, since)) + f", {failed} failures")
        clock.advance(minutes=7)  # a new time step for the next code, and under the calls' hourly cap
    assert set(seen) <= {
        "code=not_pending hash=verified | approved verified, call approved, 1 audited, 0 failures",
        "code=approved hash=goodbye | approved verified, call ended, 1 audited, 0 failures",
    }, tally(seen)


CODES_ALLOWED = Limits().number(CODE_ATTEMPTS)
LOCKOUT_THRESHOLD = Limits().number(FAILURES)


@postgres_only
@pytest.mark.parametrize("attempts, failures, ending_", [
    (CODES_ALLOWED - 1, 0, "code=too_many_attempts hash=goodbye | denied too_many_attempts, call ended, "
                                      "0 audited, 1 failures"),
    (0, LOCKOUT_THRESHOLD - 1, "code=locked hash=goodbye | locked account_locked, call ended, 0 audited, 0 failures"),
], ids=["last_code_attempt", "locking_the_account"])
def test_a_wrong_code_that_ends_the_sign_in_and_a_hash_key_at_the_same_moment_never_deadlock(
        runtime, run, clock, totp_bob, bob, attempts, failures, ending_):
    """A wrong code counts against the sign-in and the person, and the last one allowed ends the
    sign-in and its call; the `#` claims the call and approves the sign-in. One or the other."""
    svc = use_fake(runtime, FakeTelephony())
    add_phone(run, bob, NUMBER, types=("voice",))
    voice = voice_of(run, bob.id)
    # bob has signed in on the pages from here (his API enrolment made nothing familiar): his wrong
    # codes count on `failed_count` (docs/lockout.md).
    run(lambda db, svc: lockout.remember_source(db, svc, bob.id, "127.0.0.1"))
    seen: list[str] = []
    for _ in range(ROUNDS):
        run(lambda db, svc: accounts.unlock(db, svc, "bob"))
        run(lambda db, svc: setattr(db.get(User, bob.id), "failed_count", failures))
        auth_id = start_sign_in(run, "bob")["id"]
        run(lambda db, svc, a=auth_id: setattr(db.get(Authentication, a), "attempts", attempts))
        challenge_id, sid = call_for(runtime, svc, auth_id, voice)
        wrong = f"{(int(pyotp_code(totp_bob, clock.now())) + 1) % 1_000_000:06d}"
        since = run(lambda db, svc: sign_in_events(db, bob.id))

        results = race(runtime, {
            "hash": lambda s, c=challenge_id, sid=sid: calls.keys_pressed(s, svc, c, sid, "#").outcome,
            "code": lambda s, a=auth_id, code=wrong: str(checks.check_code(s, svc, a, code, "127.0.0.1").status),
        })
        failed = run(lambda db, svc: db.get(User, bob.id).failed_count)
        seen.append(summary(results, ending(run, auth_id, bob.id, since)) + f", {failed} failures")
        clock.advance(minutes=7)
    assert set(seen) <= {
        "code=not_pending hash=verified | approved verified, call approved, 1 audited, 0 failures",
        ending_,
    }, tally(seen)


@postgres_only
@pytest.mark.parametrize("wrong_before, ending_", [
    (0, "code=approved mismatch=reprompt_mismatch | approved verified, call ended, 1 audited, 0 failures"),
    (1, "code=not_pending mismatch=mismatch_goodbye | denied number_mismatch, call denied, 0 audited, 4 failures"),
], ids=["first_wrong_number", "second_wrong_number"])
def test_a_wrong_number_on_the_call_and_an_app_code_at_the_same_moment_never_deadlock(
        runtime, run, clock, totp_bob, bob, wrong_before, ending_):
    """A wrong number keyed on a number-matched call counts against the person (the second also
    denies the sign-in); the app code approves the sign-in and ends the call. With earlier failures
    both lock the person. The code first, or the wrong number first: never a crash. (Before the
    call was held ahead of the person, 4 to 12 rounds in 20 deadlocked.)"""
    use_fake(runtime, FakeTelephony())
    runtime.services = svc = dataclasses.replace(
        runtime.services, policy=dataclasses.replace(runtime.services.policy, call_approval="number"))
    add_phone(run, bob, NUMBER, types=("voice",))
    voice = voice_of(run, bob.id)
    run(lambda db, svc: lockout.remember_source(db, svc, bob.id, "127.0.0.1"))  # wrong numbers: `failed_count`
    seen: list[str] = []
    for _ in range(ROUNDS):
        run(lambda db, svc: setattr(db.get(User, bob.id), "failed_count", 3))
        auth_id = start_sign_in(run, "bob")["id"]
        challenge_id, sid = call_for(runtime, svc, auth_id, voice)

        def earlier(db, svc, c=challenge_id):  # the wrong numbers this call has refused already
            call = db.get(Challenge, c)
            call.attempts = call.call_retries = wrong_before
            return call.number_match
        number = run(earlier)
        wrong = "12" if number != "12" else "13"
        code = pyotp_code(totp_bob, clock.now())
        since = run(lambda db, svc: sign_in_events(db, bob.id))

        results = race(runtime, {
            "mismatch": lambda s, c=challenge_id, sid=sid, w=wrong: calls.keys_pressed(s, svc, c, sid, w).outcome,
            "code": lambda s, a=auth_id, code=code: str(checks.check_code(s, svc, a, code, "127.0.0.1").status),
        })
        failed = run(lambda db, svc: db.get(User, bob.id).failed_count)
        seen.append(summary(results, ending(run, auth_id, bob.id, since)) + f", {failed} failures")
        clock.advance(minutes=7)
    assert set(seen) <= {
        "code=approved mismatch=goodbye | approved verified, call ended, 1 audited, 0 failures",
        ending_,
    }, tally(seen)


@postgres_only
def test_a_fraud_report_and_a_hash_key_on_another_sign_in_never_deadlock(runtime, run, clock, bob):
    """Two sign-ins of one person, a call ringing for each: `0#` on the first blocks the person
    and ends every other sign-in with its call; `#` on the second claims its call and approves it
    (resetting earlier failures: it locks the person too). Either the approval came first and
    stands, or the report did and the second sign-in ends with it. (Before the report held the
    person's calls ahead of the person, 6 to 11 rounds in 20 deadlocked.)"""
    svc = use_fake(runtime, FakeTelephony())
    voices = two_phones_to_call(run, bob)
    seen: list[str] = []
    for _ in range(ROUNDS):
        run(lambda db, svc: accounts.unlock(db, svc, "bob"))
        run(lambda db, svc: setattr(db.get(User, bob.id), "failed_count", 3))
        reported, other = start_sign_in(run, "bob")["id"], start_sign_in(run, "bob")["id"]
        reported_call, reported_sid = call_for(runtime, svc, reported, voices[0])
        other_call, other_sid = call_for(runtime, svc, other, voices[1])

        def fraud(s, c=reported_call, sid=reported_sid):
            turn = calls.keys_pressed(s, svc, c, sid, "0#")
            return f"{turn.outcome}+{len(turn.end_calls)} to end"

        results = race(runtime, {
            "fraud": fraud,
            "hash": lambda s, c=other_call, sid=other_sid: calls.keys_pressed(s, svc, c, sid, "#").outcome,
        })

        def now(db, svc, r=reported, o=other, c=other_call):
            first, second = db.get(Authentication, r), db.get(Authentication, o)
            call = db.get(Challenge, c)
            return (f"{first.status} {first.reason}, other {second.status} {second.reason}, "
                    f"its call {call.status}, {db.get(User, bob.id).failed_count} failures")
        said = " ".join(f"{name}={said}" for name, said in sorted(results.items()))
        seen.append(f"{said} | {run(now)}")
        clock.advance(minutes=15)  # two calls a round: under the hourly caps
    assert set(seen) <= {
        "fraud=fraud_recorded+0 to end hash=verified | fraud_reported fraud_reported, "
        "other approved verified, its call approved, 0 failures",
        "fraud=fraud_recorded+1 to end hash=goodbye | fraud_reported fraud_reported, "
        "other locked fraud_reported, its call ended, 3 failures",
    }, tally(seen)


@postgres_only
def test_two_fraud_reports_on_two_sign_ins_at_the_same_moment_never_deadlock(runtime, run, clock, bob):
    """`0#` on both calls of one person's two sign-ins: each report ends the other's sign-in and
    call. The first one stands; the second hears goodbye, its sign-in already ended by the first.
    (Before the reports held the person's calls lowest id first, every round deadlocked.)"""
    svc = use_fake(runtime, FakeTelephony())
    voices = two_phones_to_call(run, bob)
    seen: list[str] = []
    for _ in range(ROUNDS):
        run(lambda db, svc: accounts.unlock(db, svc, "bob"))
        one, two = start_sign_in(run, "bob")["id"], start_sign_in(run, "bob")["id"]
        one_call, one_sid = call_for(runtime, svc, one, voices[0])
        two_call, two_sid = call_for(runtime, svc, two, voices[1])

        results = race(runtime, {
            "one": lambda s, c=one_call, sid=one_sid: calls.keys_pressed(s, svc, c, sid, "0#").outcome,
            "two": lambda s, c=two_call, sid=two_sid: calls.keys_pressed(s, svc, c, sid, "0#").outcome,
        })

        def now(db, svc, ids=(one, two), calls_=(one_call, two_call)):
            return ", ".join(f"{db.get(Authentication, a).status} (call {db.get(Challenge, c).status})"
                             for a, c in zip(ids, calls_, strict=True))
        said = " ".join(f"{name}={said}" for name, said in sorted(results.items()))
        seen.append(f"{said} | {run(now)}")
        clock.advance(minutes=15)  # two calls a round: under the hourly caps
    assert set(seen) <= {
        "one=fraud_recorded two=goodbye | fraud_reported (call fraud), locked (call ended)",
        "one=goodbye two=fraud_recorded | locked (call ended), fraud_reported (call fraud)",
    }, tally(seen)


@postgres_only
def test_sign_out_everywhere_and_a_fraud_report_on_another_sign_in_never_deadlock(runtime, run, clock, bob):
    """"Sign out everywhere" ends every sign-in under way in a browser; `0#` on one of their calls ends
    the others too. The report always stands (the account is blocked) and the other sign-in ends by one
    or the other. (When sign-out-everywhere ended the calls and waited for rows the report held,
    about 15 rounds in 20 crashed one side, sometimes losing the report.)"""
    svc = use_fake(runtime, FakeTelephony())
    voices = two_phones_to_call(run, bob)
    seen: list[str] = []
    for _ in range(ROUNDS):
        run(lambda db, svc: accounts.unlock(db, svc, "bob"))
        reported, other = start_sign_in(run, "bob")["id"], start_sign_in(run, "bob")["id"]
        reported_call, reported_sid = call_for(runtime, svc, reported, voices[0])
        call_for(runtime, svc, other, voices[1])

        results = race(runtime, {
            "fraud": lambda s, c=reported_call, sid=reported_sid: calls.keys_pressed(s, svc, c, sid, "0#").outcome,
            "everywhere": lambda s: len(cancellation.sign_out_everywhere(s, svc, s.get(User, bob.id), None)),
        })

        def now(db, svc, o=other):
            second = db.get(Authentication, o)
            blocked = db.get(User, bob.id).fraud_blocked_at is not None
            return f"other {second.status} {second.reason}, {'blocked' if blocked else 'NOT blocked'}"
        said = " ".join(f"{name}={said}" for name, said in sorted(results.items()))
        seen.append(f"{said} | {run(now)}")
        clock.advance(minutes=15)  # two calls a round: under the hourly caps
    assert set(seen) <= {
        "everywhere=0 fraud=fraud_recorded | other locked fraud_reported, blocked",
        "everywhere=0 fraud=fraud_recorded | other denied cancelled_by_person, blocked",
    }, tally(seen)
