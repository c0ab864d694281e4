"""`users link-entra` and `entra keys …`: Microsoft Entra external MFA (docs/entra.md)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from cli.use_cases import run
from edge import runtime
from mfa.entra import links, signing_keys
from mfa.entra.profile import EntraConfig


@click.command("link-entra")
@click.argument("username")
@click.option("--tenant", required=True, help="The Entra tenant ID (a GUID).")
@click.option("--oid", required=True, help="The person's Entra object ID (a GUID).")
@with_appcontext
def link_entra(username, tenant, oid):
    """The Entra user that signs in as USERNAME (part of `users`)."""
    tenant_id, object_id = run(lambda db, svc: (lambda k: (k.tenant_id, k.object_id))(
        links.link(db, svc, username, tenant, oid)))
    click.echo(f"Linked Entra user {object_id} (tenant {tenant_id}) to {username}.")
    config = runtime().settings.entra
    if config is not None and tenant_id not in config.allowed_tenants:
        click.echo(f"Note: tenant {tenant_id} is not in EAM_ALLOWED_TENANTS, so its sign-ins are "
                   "refused until it is added.", err=True)


@click.command("unlink-entra")
@click.argument("username")
@click.option("--tenant", help="Only the link in this Entra tenant (a GUID); all of them when absent.")
@with_appcontext
def unlink_entra(username, tenant):
    """Forget which Entra users sign in as USERNAME (part of `users`)."""
    removed = run(lambda db, svc: links.unlink(db, svc, username, tenant))
    if not removed:
        raise click.ClickException(f"{username} has no Entra link{' in that tenant' if tenant else ''}.")
    click.echo(f"Removed {removed} Entra link{'s' if removed > 1 else ''} of {username}.")


@click.group("entra", help="Microsoft Entra external MFA (EAM_ISSUER).")
def entra_group():
    pass


@entra_group.group("keys", help="The keys our id_tokens are signed with (published in the JWKS).")
def keys_group():
    pass


def _config() -> EntraConfig:
    config = runtime().settings.entra
    if config is None:
        raise click.ClickException("Entra external MFA is off: set EAM_ISSUER (and the other EAM_ settings) first.")
    return config


@keys_group.command("list")
@with_appcontext
def list_keys():
    """Every key, newest last: signing, published (in the JWKS) or retired."""
    _config()
    rows = run(lambda db, svc: [(k.kid, k.state, k.created_at, k.signing_since) for k in signing_keys.listed(db)])
    if not rows:
        click.echo("No keys yet: the first is made when Entra first fetches the JWKS, or by `entra keys add`.")
    for kid, state, created, since in rows:
        detail = f", signing since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        click.echo(f"{kid}  {state:<9} created {created:%Y-%m-%d %H:%M} UTC{detail}")


@keys_group.command("add")
@with_appcontext
def add_key():
    """Publish a new key (it signs only once promoted; the first key signs at once)."""
    issuer = _config().issuer
    kid, state = run(lambda db, svc: (lambda k: (k.kid, k.state))(signing_keys.add(db, svc, issuer)))
    click.echo(f"Added key {kid} ({state}).")
    if state == signing_keys.PUBLISHED:
        click.echo(f"Promote it in 24 hours, once Entra has fetched it: flask --app app entra keys promote {kid}")


@keys_group.command("promote")
@click.argument("kid")
@click.option("--force", is_flag=True, help="Promote a key published less than 24 hours ago.")
@with_appcontext
def promote_key(kid, force):
    """Make a published key the signing key; the old one stays published until retired."""
    _config()
    run(lambda db, svc: signing_keys.promote(db, svc, kid, force=force))
    click.echo(f"Key {kid} now signs. Retire the old key once tokens it signed have expired (5 minutes).")


@keys_group.command("retire")
@click.argument("kid")
@with_appcontext
def retire_key(kid):
    """Take a key out of the JWKS for good."""
    _config()
    run(lambda db, svc: signing_keys.retire(db, svc, kid))
    click.echo(f"Key {kid} is retired.")
