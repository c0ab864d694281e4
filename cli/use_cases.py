"""How every command runs its use case: one session, one commit, a refusal as one line."""
from __future__ import annotations

import click
from sqlalchemy.exc import SQLAlchemyError

from edge import runtime
from mfa.errors import MfaError
from mfa.unit_of_work import use_case


def run(use):
    """Run one use case in its own session; a refusal becomes one line and exit 1."""
    rt = runtime()
    with rt.sessions() as session:
        try:
            with use_case(session):
                return use(session, rt.services)
        except MfaError as exc:
            raise click.ClickException(exc.message) from None
        except SQLAlchemyError as exc:  # e.g. no schema yet: one line, not a trace
            first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise click.ClickException(f"database error: {first} (has `flask --app app db upgrade` run?)") from None
