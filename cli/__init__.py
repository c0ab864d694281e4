"""The command line of the README (`flask --app app …`)."""
from __future__ import annotations

from flask import Flask

from cli.accounts import apikeys_group, users_group
from cli.data import data_group
from cli.database import db_group
from cli.push import push_group
from voice_prompts.cli import prompts_group


def register(app: Flask) -> None:
    for group in (db_group, users_group, apikeys_group, data_group, push_group, prompts_group):
        app.cli.add_command(group)
