"""`data …`: the data encrypted at rest under DATA_KEY."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from cli.use_cases import run
from mfa import data_key_check, key_rotation


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
                   "(only their hash is kept; see docs/backups.md).")
    click.echo("Done: every method and the entries for its number are under the newest DATA_KEY. "
               "Older keys may leave DATA_KEY an hour from now (texted codes and hourly caps used them).")


@data_group.command("check", help="Decrypt stored secrets with DATA_KEY (a sample of each kind; --all: every one): "
                                   "the check after restoring a backup or changing DATA_KEY.")
@click.option("--all", "every_row", is_flag=True, help="Decrypt every stored secret, not a sample.")
@with_appcontext
def check(every_row: bool):
    how = data_key_check.everything if every_row else data_key_check.sample
    result = run(lambda db, svc: how(db, svc.vault))
    click.echo(f"{result.summary()}.")
    problem = result.problem()
    if problem is not None:
        raise click.ClickException(problem)
    if result.checked == 0:
        click.echo("The database holds no encrypted secrets yet: nothing shows whether DATA_KEY is the right one.")
    elif any(t.older for t in result.tallies):
        click.echo("Some are under an older key: keep it in DATA_KEY until `flask --app app data rotate-key` has run.")
