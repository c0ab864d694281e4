"""The application factory. `python app.py` runs the embedded development server."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

import api
import cli
import devices.views
import edge
import ops
import web
from ivr import webhooks
from ivr.provider import TwilioProvider
from ivr.twiml import PromptVoice
from voice_prompts import catalogue
from voice_prompts.library import Playback, PromptLibrary
from mfa import change_notices
from mfa.clock import SystemClock
from mfa.passwords import Passwords
from mfa.policy import Policy
from mfa.push_delivery import NoPush, PushSender
from mfa.services import Services
from mfa.vault import Vault
from devices.webpush import WebPushSender
from models.database import make_engine, make_session_factory
from settings import load

HERE = Path(__file__).resolve().parent


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment; `config` overrides settings by their env names.

    Non-string keys serve tests and tools: CLOCK (a Clock), PASSWORD_HASHER (an
    argon2 PasswordHasher), INSTANCE_PATH and SLEEP (what request threads wait with
    instead of time.sleep).
    """
    config = dict(config or {})
    clock = config.pop("CLOCK", None) or SystemClock()
    passwords = Passwords(config.pop("PASSWORD_HASHER", None))
    sleep = config.pop("SLEEP", None)
    instance = Path(config.pop("INSTANCE_PATH", None) or os.environ.get("INSTANCE_PATH") or HERE / "instance")
    app = Flask(__name__, instance_path=str(instance))
    settings = load({**os.environ, **config}, instance)

    engine = make_engine(settings.database_url)
    services = Services(
        clock=clock,
        vault=Vault(settings.data_keys),
        policy=Policy(settings.mfa_required_roles, settings.mfa_required_regions,
                      settings.call_approval, settings.call_approval_by_role,
                      settings.remember_days, settings.remember_days_by_role),
        service_name=settings.service_name,
        public_host=settings.public_host,
        passwords=passwords,
        telephony=TwilioProvider(settings) if sleep is None else TwilioProvider(settings, sleep=sleep),
        public_base_url=settings.public_base_url,
        push=_push_sender(settings),
        limits=settings.limits,
        allowed_countries=settings.telephony_allowed_countries,
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        # __Host-: only ever set by this host over https, for the whole site (no Domain, Path=/).
        SESSION_COOKIE_NAME="__Host-session" if settings.secure_cookies else "session",
        SESSION_COOKIE_PATH="/",
    )
    prompt_voice = PromptVoice(PromptLibrary(service=settings.service_name, service_cy=settings.service_name_cy),
                               catalogue, settings.public_base_url,
                               Playback(settings.voice_prompts, settings.telephony_provider))
    rt = edge.Runtime(settings, engine, make_session_factory(engine), services, prompt_voice)
    change_notices.send_after_commit(rt.sessions)  # texts about changed methods leave once committed
    if sleep is not None:
        rt.sleep = sleep
    edge.install(app, rt)
    api.register(app)
    devices.views.register(app)
    webhooks.register(app)
    cli.register(app)
    ops.register(app)
    web.register(app)
    return app


if __name__ == "__main__":
    from devserver import main

    main()


def _push_sender(settings) -> PushSender:
    """Web Push when VAPID keys are configured; otherwise phones learn of requests by polling."""
    if settings.webpush_vapid_private_key is None:
        return NoPush()
    return WebPushSender(settings.webpush_vapid_private_key, settings.webpush_subject, settings.webpush_endpoint_hosts)
