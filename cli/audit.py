"""`prune` and `audit show`: retention of the trail and the sign-ins, and reading one person's trail."""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from cli.use_cases import run
from edge import runtime
from mfa import audit_trail, retention
from mfa.unit_of_work import Transactions
from models import AuditEvent


@click.command("prune", help="Delete audit events, sign-ins that are over (finished, or expired), their "
                             "challenges and send records older than AUDIT_RETENTION_DAYS (docs/audit.md). "
                             "Safe to run often.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@with_appcontext
def prune_command(dry_run):
    rt = runtime()
    days = rt.settings.audit_retention_days
    if dry_run:
        pruned = run(lambda db, svc: retention.would_prune(db, svc, days))
    else:
        try:
            with rt.sessions() as session:  # each batch commits: a failure keeps what went before it
                pruned = retention.prune(Transactions(session), rt.services, days)
        except SQLAlchemyError as exc:  # e.g. the database unreachable: one line, not a trace
            first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise click.ClickException(f"database error: {first}") from None
    click.echo(_summary(pruned, dry_run))


def _summary(p: retention.Pruned, dry_run: bool) -> str:
    older = f"older than {p.cutoffs.audit_events:%Y-%m-%d %H:%M} UTC"
    sends = "" if p.cutoffs.send_records == p.cutoffs.audit_events else \
        f" (send records: older than {p.cutoffs.send_records:%Y-%m-%d %H:%M} UTC, the longest limit window)"
    counts = f"{p.audit_events} audit events {older}, {p.sign_ins} sign-ins, {p.challenges} challenges, " \
             f"{p.send_records} send records{sends}."
    return f"Would delete {counts} Dry run: nothing deleted." if dry_run else f"Deleted {counts}"


@click.group("audit", help="The audit trail (docs/audit.md).")
def audit_group():
    pass


@audit_group.command("show", help="A person's audit trail, oldest first: the latest --limit events.")
@click.argument("username")
@click.option("--since", help="From this date (YYYY-MM-DD, UTC) or ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=audit_trail.DEFAULT_LIMIT, show_default=True,
              help="At most this many (the latest).")
@with_appcontext
def show_command(username, since, limit):
    try:
        start = audit_trail.parse_since(since) if since is not None else None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    trail = run(lambda db, svc: audit_trail.of_person(db, svc, username, start, limit))
    if trail.left_out:
        click.echo(f"({trail.left_out} earlier event(s) not shown: use --since or --limit)")
    for event in trail.events:
        click.echo(_line(event))
    if not trail.events:
        click.echo("no audit events" + (f" since {start:%Y-%m-%d %H:%M} UTC" if start else ""))


def _line(e: AuditEvent) -> str:
    """One event: numbers appear only as stored (masked labels such as 'Mobile ending 222')."""
    line = f"{e.at:%Y-%m-%d %H:%M:%S}Z  {e.event:<28} {e.outcome:<12} {e.method or '-':<24} " \
           f"{e.source_ip or '-':<15} {e.reason or '-'}"
    return f"{line}  ({e.detail})" if e.detail else line
