"""The command line of the README (`flask --app app …`)."""
from __future__ import annotations

from flask import Flask

from cli.accounts import apikeys_group, users_group
from cli.audit import audit_group, prune_command
from cli.data import data_group
from cli.entra import entra_group, link_entra, unlink_entra
from cli.database import db_group, version_command
from cli.push import push_group
from voice_prompts.cli import prompts_group

users_group.add_command(link_entra)  # `users link-entra` and `users unlink-entra`: their code lives with
users_group.add_command(unlink_entra)  # the rest of Entra's


def register(app: Flask) -> None:
    for group in (db_group, users_group, apikeys_group, data_group, push_group, prompts_group, entra_group):
        app.cli.add_command(group)
    app.cli.add_command(version_command)
    app.cli.add_command(audit_group)
    app.cli.add_command(prune_command)
