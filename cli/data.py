"""`data …`: the data encrypted at rest under DATA_KEY."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from cli.use_cases import run
from mfa import key_rotation


@click.group("data", help="Data encrypted at rest under DATA_KEY.")
def data_group():
    pass


@data_group.command("rotate-key", help="Re-encrypt and re-hash everything under the newest DATA_KEY "
                                        "(in committed batches: resumable, safe to repeat).")
@with_appcontext
def rotate_key():
    r = key_rotation.Rotation()
    while not r.done:  # one transaction per batch: a stop loses at most the batch under way
        run(lambda db, svc: key_rotation.rotate_batch(db, svc.vault, r))
    run(lambda db, svc: key_rotation.rotate_entra_keys(db, svc.vault, r))
    run(lambda db, svc: key_rotation.count_left(db, r))
    click.echo(f"Methods checked: {r.methods}; secrets re-encrypted: {r.secrets_reencrypted}; "
               f"phone look-ups re-hashed: {r.lookups_rehashed}.")
    click.echo(f"Do-not-call entries re-hashed: {r.do_not_call_rehashed}; send records re-hashed: "
               f"{r.send_records_rehashed}.")
    if r.do_not_call_left:
        click.echo(f"Left as they are: {r.do_not_call_left} do-not-call "
                   f"entr{'y' if r.do_not_call_left == 1 else 'ies'} for numbers no one has registered "
                   "(only their hash is kept; see docs/deploy.md).")
    click.echo("Done: every method and the entries for its number are under the newest DATA_KEY. "
               "Older keys may leave DATA_KEY an hour from now (texted codes and hourly caps used them).")
