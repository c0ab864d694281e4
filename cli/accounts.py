"""`users …` and `apikeys …`: each command runs one use case and prints its outcome."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from cli.use_cases import run
from mfa import access_passes, accounts, api_keys, app_passwords, recovery_codes, remembered_browsers
from mfa.entra import links
from mfa.queries import do_not_call_since
from models.user import DEFAULT_LANGUAGE, LANGUAGES, ROLES


@click.group("users", help="People who sign in.")
def users_group():
    pass


@users_group.command("create")
@click.argument("username")
@click.option("--password", help="Prompted for (hidden, twice) when absent.")
@click.option("--role", type=click.Choice(ROLES), default="user", show_default=True)
@click.option("--region", default="england", show_default=True, help="e.g. england, wales, scotland, northern-ireland")
@click.option("--hybrid", is_flag=True, help="The person's mailbox is hybrid (office phones are refused).")
@click.option("--language", type=click.Choice(LANGUAGES), default=DEFAULT_LANGUAGE, show_default=True)
@with_appcontext
def create_user(username, password, role, region, hybrid, language):
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = run(lambda db, svc: accounts.create_user(
        db, svc, username, password, role=role, region=region, hybrid=hybrid, language=language))
    click.echo(f"Created {user.username} ({user.role}, {user.region}{', hybrid' if user.hybrid else ''}).")


@users_group.command("show")
@click.argument("username")
@with_appcontext
def show_user(username):
    def describe(db, svc):
        user = accounts.get_user(db, username)
        now = svc.clock.now()
        lines = [
            f"username:  {user.username}",
            f"role:      {user.role}",
            f"region:    {user.region}",
            f"hybrid:    {'yes' if user.hybrid else 'no'}",
            f"language:  {user.language}",
            f"MFA:       {'required' if svc.policy.requires_mfa(user) else 'not required'} "
            f"({svc.policy.explain(user)})",
            f"status:    {_status(user, now)}",
            f"app passwords: {len(app_passwords.list_for(db, user))}",
            f"recovery codes: {recovery_codes.remaining(db, user.id)} left",
            f"access pass: {_pass(access_passes.working(db, svc, user.id))}",
            *(f"entra user: {link.object_id} (tenant {link.tenant_id})" for link in links.of(db, user)),
            "methods:" if user.methods else "methods:   none (registration at next sign-in)",
        ]
        for m in user.methods:
            refused = do_not_call_since(db, svc.vault, svc.vault.decrypt(m.phone_encrypted)) \
                if m.phone_encrypted else None
            flags = ", ".join(f for f in (
                m.kind, "default" if m.is_default else None,
                "verified" if m.is_verified else "not verified",
                f"do not call since {refused:%Y-%m-%d %H:%M} UTC: 9 was pressed; calls are refused until "
                "the person verifies this number by text" if refused else None,
            ) if f)
            lines.append(f"  {m.id}  {m.type:<6} {m.label}  ({flags})")
        # Only those that can still skip the second step; never their tokens (only hashes are kept anyway).
        browsers = remembered_browsers.list_for(db, svc, user)
        lines.append(f"remembered browsers: {len(browsers)}")
        lines.extend(f"  {row.label}  (until {ends:%Y-%m-%d %H:%M} UTC)" for row, ends in browsers)
        return "\n".join(lines)

    click.echo(run(describe))


def _pass(row) -> str:
    if row is None:
        return "none working"
    return f"until {row.expires_at:%Y-%m-%d %H:%M} UTC, {row.uses_allowed - row.uses} use(s) left"


def _status(user, now) -> str:
    if user.fraud_blocked_at:
        return f"blocked after a fraud report at {user.fraud_blocked_at:%Y-%m-%d %H:%M} UTC (users unlock)"
    if user.locked_until and user.locked_until > now:
        return f"locked until {user.locked_until:%Y-%m-%d %H:%M} UTC (users unlock)"
    locks = []  # smart lockout (docs/lockout.md): the person still signs in from familiar places, or mails
    if user.unfamiliar_locked_until and user.unfamiliar_locked_until > now:
        locks.append(f"locked until {user.unfamiliar_locked_until:%Y-%m-%d %H:%M} UTC for unfamiliar sources "
                     "(familiar ones still sign in)")
    if user.app_password_locked_until and user.app_password_locked_until > now:
        locks.append(f"app passwords locked until {user.app_password_locked_until:%Y-%m-%d %H:%M} UTC")
    return "; ".join(locks) + " (users unlock)" if locks else "active"


@users_group.command("reset-methods", help="Forget every method: registration happens again at next sign-in.")
@click.argument("username")
@with_appcontext
def reset_methods(username):
    count = run(lambda db, svc: accounts.reset_methods(db, svc, username))
    click.echo(f"Removed {count} method(s) from {username.lower()}; they will register again at next sign-in.")


@users_group.command("unlock", help="Clear a lockout or a fraud block.")
@click.argument("username")
@with_appcontext
def unlock(username):
    user = run(lambda db, svc: accounts.unlock(db, svc, username))
    click.echo(f"Unlocked {user.username}.")


@users_group.command("issue-pass", help="A temporary access pass for someone who lost their phone: printed "
                     "once, as the last line; it replaces any pass issued to them before (docs/recovery.md).")
@click.argument("username")
@click.option("--minutes", default=str(access_passes.DEFAULT_MINUTES), show_default=True,
              help=f"How long it works: {access_passes.MIN_MINUTES} to {access_passes.MAX_MINUTES}.")
@click.option("--uses", default=str(access_passes.DEFAULT_USES), show_default=True,
              help=f"How many sign-ins it is good for: {access_passes.MIN_USES} to {access_passes.MAX_USES}.")
@with_appcontext
def issue_pass(username, minutes, uses):
    minutes, uses = _whole_number(minutes, "--minutes"), _whole_number(uses, "--uses")
    secret = run(lambda db, svc: access_passes.issue(db, svc, username, minutes=minutes, uses=uses))
    click.echo(f"Temporary access pass for {username.lower()}: works for {minutes} minutes and "
               f"{uses} sign-in{'s' if uses != 1 else ''}. Read it to them once; it is not shown again:")
    click.echo(secret)


def _whole_number(value: str, option: str) -> int:
    """A whole number, or one line saying what is wrong (click's own refusal is a usage page)."""
    if not value.isascii() or not value.isdigit() or len(value) > 6:  # int() refuses 4300+ digits with a trace
        raise click.ClickException(f"{option} must be a whole number, not {value[:20]!r}.")
    return int(value)


@click.group("apikeys", help="Keys for relying applications.")
def apikeys_group():
    pass


@apikeys_group.command("create")
@click.argument("name")
@with_appcontext
def create_api_key(name):
    key = run(lambda db, svc: api_keys.create(db, svc, name))
    click.echo(f"API key {name!r} created. It is shown once; store it now:")
    click.echo(key)


@apikeys_group.command("revoke", help="Stop a key working (within 30 s on every running instance).")
@click.argument("name")
@with_appcontext
def revoke_api_key(name):
    key = run(lambda db, svc: api_keys.revoke(db, svc, name))
    click.echo(f"API key {key.name!r} revoked.")


@apikeys_group.command("list", help="Every API key: name, created, revoked (never the key itself).")
@with_appcontext
def list_api_keys():
    rows = run(lambda db, svc: [(k.name, k.created_at, k.revoked_at) for k in api_keys.list_all(db)])
    for name, created, revoked in rows:
        state = f"revoked {revoked:%Y-%m-%d %H:%M}" if revoked else "active"
        click.echo(f"{name}\tcreated {created:%Y-%m-%d %H:%M}\t{state}")
    if not rows:
        click.echo("No API keys yet: flask --app app apikeys create NAME")
