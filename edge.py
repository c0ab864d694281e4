"""What every HTTP edge (API, pages, webhooks) shares: the runtime and the request's DB session."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from mfa.services import Services
from settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    services: Services
    prompt_voice: Any = None  # ivr.twiml.PromptVoice: recorded prompts, loaded once


def runtime() -> Runtime:
    return current_app.extensions["mfa"]


def services() -> Services:
    return runtime().services


def db() -> Session:
    """One session per request, closed when the request ends."""
    if "db" not in g:
        g.db = runtime().sessions()
    return g.db


def client_ip() -> str | None:
    return request.remote_addr


def install(app: Flask, rt: Runtime) -> None:
    app.extensions["mfa"] = rt

    @app.teardown_appcontext
    def _close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()
