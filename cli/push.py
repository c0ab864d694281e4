"""`push …`: the Web Push (VAPID) key the server signs push messages with."""
from __future__ import annotations

import click

from mfa.webpush_keys import generate_vapid_private_key, vapid_public_key


@click.group("push", help="Push approvals (the phone web app).")
def push_group():
    pass


@push_group.command("vapid-keys", help="Make a VAPID key pair and print it, once, as lines for the environment.")
def vapid_keys():
    # No app context: nothing is stored. The key goes to stdout only, so `>> env-file` keeps it
    # and nothing else (logs, the database) ever sees it.
    private_key = generate_vapid_private_key()
    click.echo(f"WEBPUSH_VAPID_PRIVATE_KEY={private_key}")
    click.echo(f"# public key (applicationServerKey; the server derives it and gives it to phones): "
               f"{vapid_public_key(private_key)}")
    click.echo("# keep the private key secret and stable; also set WEBPUSH_SUBJECT=mailto:<operator address> "
               "or an https URL")
