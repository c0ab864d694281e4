"""`flask --app app prune`: what retention deletes, what it must keep, and that it is safe to run often."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select

from app import create_app
from mfa import push_approvals, retention
from mfa.unit_of_work import Transactions
from models.base import new_id
from models import AuditEvent, Authentication, Challenge, EntraRequest, Method, SendRecord
from models.states import AuthStatus, ChallengeStatus, Reason
from settings import SettingsError
from tests.conftest import START, _pg_url

OLD = START - timedelta(days=100)  # past the default 90 days
RECENT = START - timedelta(days=10)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args))


@pytest.fixture
def phone_id(alice, session):
    return session.scalar(select(Method.id).where(Method.user_id == alice.id))


def sign_in(run, user_id, method_id, when, *, status=AuthStatus.APPROVED, challenge_type="sms",
            reason=Reason.VERIFIED, answered=False, entra=False, sign_in_id=None) -> str:
    """A sign-in made at `when` with one challenge, its send record and an audit event; its id."""
    def add(db, svc):
        auth = Authentication(id=sign_in_id or new_id(), user_id=user_id, status=status, reason=reason, created_at=when,
                              expires_at=when + timedelta(minutes=5), completed_at=when + timedelta(minutes=1))
        db.add(auth)
        db.flush()
        challenge = Challenge(authentication_id=auth.id, method_id=method_id, type=challenge_type,
                              status=ChallengeStatus.DENIED if answered else ChallengeStatus.APPROVED,
                              reason=reason, created_at=when, last_sent_at=when, expires_at=when + timedelta(minutes=5),
                              answered_at=when + timedelta(seconds=30) if answered else None)
        db.add(challenge)
        db.flush()
        db.add(SendRecord(at=when, user_id=user_id, phone_lookup="lookup", type="sms", challenge_id=challenge.id))
        db.add(AuditEvent(at=when, user_id=user_id, username="alice", event="sign_in", outcome=status))
        if entra:
            db.add(EntraRequest(authentication_id=auth.id, tenant_id="t", object_id="o", subject="s",
                                nonce=f"nonce-{auth.id}", hint_hash=auth.id, state="x", redirect_uri="https://x",
                                acr="possession", amr_allowed="*", created_at=when))
        return auth.id
    return run(add)


def counts(runtime) -> dict[str, int]:
    with runtime.sessions() as db:
        return {model.__tablename__: db.scalar(select(func.count()).select_from(model)) or 0
                for model in (AuditEvent, Authentication, Challenge, SendRecord, EntraRequest)}


def ids(runtime) -> set[str]:
    with runtime.sessions() as db:
        return set(db.scalars(select(Authentication.id)).all())


def test_prune_deletes_what_is_older_than_the_retention_period_and_keeps_the_rest(cli, run, runtime, alice, phone_id):
    old = sign_in(run, alice.id, phone_id, OLD, entra=True)
    recent = sign_in(run, alice.id, phone_id, RECENT)
    before = counts(runtime)

    result = cli("prune")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("Deleted 1 audit events older than 2026-08-30 09:00 UTC, 1 sign-ins, "
                                     "1 challenges, 1 send records.")
    assert ids(runtime) == {recent} and old not in ids(runtime)
    after = counts(runtime)
    assert after["entra_requests"] == 0  # went with its sign-in: the foreign key holds
    assert {name: before[name] - after[name] for name in after} == {
        "audit_events": 1, "authentications": 1, "challenges": 1, "send_records": 1, "entra_requests": 1}


def test_running_prune_again_deletes_nothing_more(cli, run, runtime, alice, phone_id):
    sign_in(run, alice.id, phone_id, OLD)
    sign_in(run, alice.id, phone_id, RECENT)
    assert cli("prune").exit_code == 0
    kept = counts(runtime)

    again = cli("prune")

    assert again.exit_code == 0
    assert again.output.startswith("Deleted 0 audit events") and ", 0 sign-ins, 0 challenges, 0 send records." \
        in again.output
    assert counts(runtime) == kept


def test_a_dry_run_counts_what_would_go_and_deletes_nothing(cli, run, runtime, alice, phone_id):
    sign_in(run, alice.id, phone_id, OLD)
    sign_in(run, alice.id, phone_id, OLD - timedelta(days=1))
    before = counts(runtime)

    result = cli("prune", "--dry-run")

    assert result.exit_code == 0
    assert result.output.startswith("Would delete 2 audit events older than 2026-08-30 09:00 UTC, 2 sign-ins, "
                                    "2 challenges, 2 send records.")
    assert "nothing deleted" in result.output
    assert counts(runtime) == before


def test_an_open_sign_in_is_kept_until_it_has_been_expired_for_the_retention_period(cli, run, runtime, clock,
                                                                                  alice, phone_id):
    """Nothing marks an abandoned prompt expired unless it is read again: prune goes by its expiry."""
    open_ = {"status": AuthStatus.PENDING, "reason": None}
    live = sign_in(run, alice.id, phone_id, START - timedelta(minutes=2), **open_)  # expires in 3 minutes
    lately = sign_in(run, alice.id, phone_id, START - timedelta(days=89), status=AuthStatus.MFA_REQUIRED,
                     reason=None)  # expired 89 days ago: not yet the 90 days
    abandoned = sign_in(run, alice.id, phone_id, OLD, entra=True, **open_)
    never_registered = sign_in(run, alice.id, phone_id, OLD, status=AuthStatus.REGISTRATION_REQUIRED, reason=None)

    assert ", 2 sign-ins, 2 challenges, " in cli("prune", "--dry-run").output
    result = cli("prune")

    assert result.exit_code == 0 and ", 2 sign-ins, 2 challenges, " in result.output
    assert ids(runtime) == {live, lately} and not {abandoned, never_registered} & ids(runtime)
    assert counts(runtime)["entra_requests"] == 0 and counts(runtime)["challenges"] == 2
    clock.advance(days=2)  # `lately` has now been dead 91 days; `live` two

    assert cli("prune").exit_code == 0

    assert ids(runtime) == {live}


def test_rows_move_out_as_the_clock_moves_on(cli, run, runtime, clock, alice, phone_id):
    recent = sign_in(run, alice.id, phone_id, RECENT)
    assert cli("prune").output.startswith("Deleted 0 audit events")
    clock.advance(days=81)  # RECENT is now 91 days old

    assert cli("prune").exit_code == 0

    assert recent not in ids(runtime)


def test_audit_retention_days_moves_the_cutoff(app_config, run, alice, phone_id):
    longer = create_app({**app_config, "AUDIT_RETENTION_DAYS": "200"})
    old = sign_in(run, alice.id, phone_id, OLD)

    result = longer.test_cli_runner().invoke(args=["prune"])

    assert result.output.startswith("Deleted 0 audit events older than 2026-05-12 09:00 UTC")
    assert old in ids(longer.extensions["mfa"])
    longer.extensions["mfa"].engine.dispose()


@pytest.mark.parametrize("value", ["0", "3651", "ninety", "9O", "\u0663"])
def test_a_malformed_retention_period_stops_start_up_with_one_line_naming_it(app_config, value):
    with pytest.raises(SettingsError) as stopped:
        create_app({**app_config, "AUDIT_RETENTION_DAYS": value})
    assert "AUDIT_RETENTION_DAYS" in str(stopped.value) and "\n" not in str(stopped.value)


def test_the_push_answers_the_pause_reads_are_kept_however_old(cli, run, runtime, alice, phone_id):
    """Two denials in a row pause push (LIMIT_PUSH_DENIALS=2), however far apart they were."""
    older = sign_in(run, alice.id, phone_id, OLD - timedelta(days=1), challenge_type="push",
                    status=AuthStatus.DENIED, reason=Reason.PUSH_DENIED, answered=True)
    first = sign_in(run, alice.id, phone_id, OLD, challenge_type="push", status=AuthStatus.DENIED,
                    reason=Reason.PUSH_DENIED, answered=True)
    second = sign_in(run, alice.id, phone_id, START - timedelta(minutes=2), challenge_type="push",
                     status=AuthStatus.DENIED, reason=Reason.PUSH_DENIED, answered=True)
    paused = lambda: run(lambda db, svc: push_approvals._paused_until(db, svc, alice.id))  # noqa: E731
    assert paused() is not None

    assert cli("prune").exit_code == 0

    assert ids(runtime) == {first, second} and older not in ids(runtime)
    assert paused() is not None


def test_send_records_inside_a_limit_window_stay_when_retention_is_shorter(app_config, run, clock, alice):
    """A window longer than the retention period (here the resend wait, set to two days) keeps its sends."""
    app = create_app({**app_config, "AUDIT_RETENTION_DAYS": "1", "LIMIT_RESEND_WAIT_SECONDS": str(2 * 86400)})
    run(lambda db, svc: db.execute(insert(SendRecord), [
        {"at": START - timedelta(hours=h), "user_id": alice.id, "phone_lookup": "x", "type": "sms"} for h in (36, 49)]))

    result = app.test_cli_runner().invoke(args=["prune"])

    assert "0 sign-ins, 0 challenges, 1 send records (send records: older than 2026-11-26 09:00 UTC" in result.output
    with app.extensions["mfa"].sessions() as db:
        assert db.scalars(select(SendRecord.at)).all() == [START - timedelta(hours=36)]
    app.extensions["mfa"].engine.dispose()


@pytest.mark.skipif(not _pg_url(), reason="two prunes at once need PostgreSQL's row locks (set TEST_DATABASE_URL)")
def test_two_prunes_at_once_both_succeed_and_count_each_row_once(run, runtime, alice, phone_id):
    for day in range(60):
        sign_in(run, alice.id, phone_id, OLD - timedelta(days=day))
    run(lambda db, svc: db.execute(insert(AuditEvent), [
        {"at": OLD, "user_id": alice.id, "event": "sign_in", "outcome": "ok"} for _ in range(900)]))
    results: list[retention.Pruned] = []
    errors: list[BaseException] = []

    def prune() -> None:
        try:
            with runtime.sessions() as session:
                results.append(retention.prune(Transactions(session), runtime.services, 90, batch=25))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == [] and len(results) == 2
    assert sum(r.audit_events for r in results) == 960
    assert sum(r.sign_ins for r in results) == 60 and sum(r.challenges for r in results) == 60
    assert sum(r.send_records for r in results) == 60
    with runtime.sessions() as db:
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.at <= OLD)) == 0
    assert counts(runtime)["authentications"] == counts(runtime)["send_records"] == 0


def test_prune_works_through_more_rows_than_one_batch(run, runtime, alice, phone_id):
    for day in range(12):
        sign_in(run, alice.id, phone_id, OLD - timedelta(days=day))
    with runtime.sessions() as session:
        pruned = retention.prune(Transactions(session), runtime.services, 90, batch=5)
    assert (pruned.audit_events, pruned.sign_ins, pruned.challenges, pruned.send_records) == (12, 12, 12, 12)
    assert counts(runtime)["authentications"] == 0


def test_prune_without_a_schema_is_one_line(app_config, tmp_path):
    bare = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    result = bare.test_cli_runner().invoke(args=["prune"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: database error: no such table: audit_events"
    bare.extensions["mfa"].engine.dispose()


@pytest.mark.skipif(not _pg_url(), reason="row locks are PostgreSQL's (set TEST_DATABASE_URL)")
def test_a_prune_passes_over_rows_another_prune_holds_instead_of_waiting(run, runtime, alice, phone_id):
    held, free = sign_in(run, alice.id, phone_id, OLD), sign_in(run, alice.id, phone_id, OLD - timedelta(days=1))
    done: list[retention.Pruned] = []

    def prune() -> None:
        with runtime.sessions() as session:
            done.append(retention.prune(Transactions(session), runtime.services, 90))

    with runtime.sessions() as other:  # as a prune in the middle of its batch holds its rows
        other.execute(select(Authentication.id).where(Authentication.id == held).with_for_update())
        thread = threading.Thread(target=prune)
        thread.start()
        thread.join(timeout=10)
        finished_while_held = not thread.is_alive()
        other.rollback()
    thread.join()

    assert finished_while_held and done[0].sign_ins == 1
    assert ids(runtime) == {held} and free not in ids(runtime)


def test_old_push_answers_that_are_kept_do_not_stop_the_batches_after_them(run, runtime, alice, phone_id):
    """The kept sign-ins fill the first batch (the lowest ids): the next batch starts after them."""
    push_denied = {"challenge_type": "push", "status": AuthStatus.DENIED, "reason": Reason.PUSH_DENIED,
                   "answered": True}
    kept = {sign_in(run, alice.id, phone_id, OLD - timedelta(days=n), sign_in_id=f"{n:032x}", **push_denied)
            for n in range(2)}
    for n in range(3):
        sign_in(run, alice.id, phone_id, OLD - timedelta(days=5 + n), sign_in_id=f"f{n:031x}")

    with runtime.sessions() as session:
        pruned = retention.prune(Transactions(session), runtime.services, 90, batch=2)

    assert pruned.sign_ins == 3 and ids(runtime) == kept


def test_push_answers_are_ranked_once_per_run_not_once_per_batch(run, runtime, alice, phone_id):
    """Ranking every answered push request is the costly part: once per run, never inside a batch's query."""
    for day in range(12):
        sign_in(run, alice.id, phone_id, OLD - timedelta(days=day), challenge_type="push", answered=True)
    statements: list[str] = []
    listener = lambda _c, _cur, statement, *_: statements.append(statement)  # noqa: E731
    event.listen(runtime.engine, "before_cursor_execute", listener)
    try:
        with runtime.sessions() as session:
            pruned = retention.prune(Transactions(session), runtime.services, 90, batch=5)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", listener)

    assert pruned.sign_ins == 10
    assert len([s for s in statements if "row_number" in s.lower()]) == 1, "\n".join(statements)


@pytest.mark.skipif(not _pg_url(), reason="the plan checked is PostgreSQL's (set TEST_DATABASE_URL)")
def test_postgresql_excludes_the_kept_push_answers_with_an_anti_join_not_a_subplan(runtime):
    """NOT IN (subquery) became a subplan PostgreSQL re-read for every row past its hash memory."""
    query = select(func.count()).select_from(retention.prunable_sign_ins(runtime.services, START).subquery())
    with runtime.sessions() as db:
        compiled = query.compile(dialect=db.get_bind().dialect, compile_kwargs={"render_postcompile": True})
        plan = "\n".join(row[0] for row in db.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))

    assert "Anti Join" in plan and "SubPlan" not in plan, plan
