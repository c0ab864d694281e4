"""Rotating DATA_KEY: look-ups span every listed key, and `data rotate-key` moves everything to the newest."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from app import create_app
from mfa import api_keys, key_rotation
from mfa.phones import mask
from models import DoNotCall, Method, SendRecord
from tests import personas
from tests.conftest import run_in
from tests.helpers import (LiveApi, LiveServer, add_phone, last_code, method_id, pyotp_code, secret_from_uri,
                           start_sign_in)

ROOT = Path(__file__).resolve().parent.parent
ALICE = "+447400111222"
GONE = "+447400999888"  # a number someone asked not to be called, registered by no one now
NEW = Fernet.generate_key().decode()


@contextmanager
def serving(app_config, standin_server, phones, data_key, api_key):
    """The app restarted with `data_key`, on a real port with the stand-in as its Twilio."""
    server = LiveServer()
    app = create_app({**app_config, "DATA_KEY": data_key, "PUBLIC_BASE_URL": server.url,
                      "TWILIO_API_BASE_URL": standin_server.url})
    server.start(app)
    server.api, server.app = LiveApi(server.url, api_key), app
    try:
        yield server
    finally:
        phones.wait_idle()
        server.stop()
        app.extensions["mfa"].engine.dispose()


def rotate_key(app_config, data_key):
    app = create_app({**app_config, "DATA_KEY": data_key})
    try:
        return app.test_cli_runner().invoke(args=["data", "rotate-key"])
    finally:
        app.extensions["mfa"].engine.dispose()


def signs_in_by_text(server, phones, clock):
    clock.advance(60)
    auth = start_sign_in(server.api, "alice", expect="mfa_required")
    sent = server.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "sms")})
    assert sent.status_code == 201, sent.text
    phones.wait_idle()
    code = last_code(phones, ALICE)
    return server.api.post(f"/authentications/{auth['id']}/checks", {"code": code}).json()["status"] == "approved"


def calls_are_refused_as_do_not_call(server, clock):
    clock.advance(60)
    auth = start_sign_in(server.api, "alice", expect="mfa_required")
    refused = server.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
    return refused.status_code == 422 and refused.json()["error"] == "do_not_call"


def signs_in_with_the_app(server, secret, clock):
    clock.advance(90)
    auth = start_sign_in(server.api, "bob", expect="mfa_required")
    checked = server.api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    return checked.json()["status"] == "approved"


@pytest.fixture
def world(app_config, standin_server, phones, run, clock):
    """Under the old key: alice's verified mobile (she pressed 9 on one call), bob's app, and a
    do-not-call entry for a number no one has registered any more. Yields (api key, bob's secret)."""
    api_key = run(lambda db, svc: api_keys.create(db, svc, "rotation-tests"))
    personas.alice(run)
    personas.bob(run)
    run(lambda db, svc: db.add(DoNotCall(phone_lookup=svc.vault.keyed_hash(GONE), label=mask(GONE),
                                         created_at=svc.clock.now())))
    with serving(app_config, standin_server, phones, app_config["DATA_KEY"], api_key) as old:
        auth = start_sign_in(old.api, "alice", expect="mfa_required")
        old.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, "voice")})
        phones.wait_idle()
        sid = phones.calls(to=ALICE)[-1].sid
        phones.answer(sid)
        phones.press(sid, "9")
        phones.wait_idle()
        assert calls_are_refused_as_do_not_call(old, clock)

        auth = start_sign_in(old.api)
        uri = old.api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"}).json()["otpauth_uri"]
        secret = secret_from_uri(uri)
        done = old.api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
        assert done.json()["status"] == "approved"
    yield api_key, secret


def test_with_a_new_key_put_first_old_data_is_still_read_and_found(app_config, standin_server, phones, clock, world):
    api_key, secret = world
    with serving(app_config, standin_server, phones, f"{NEW},{app_config['DATA_KEY']}", api_key) as both:
        assert signs_in_by_text(both, phones, clock)
        assert calls_are_refused_as_do_not_call(both, clock)
        assert signs_in_with_the_app(both, secret, clock)


def test_after_rotate_key_the_new_key_alone_reads_and_finds_everything(app_config, standin_server, phones, clock,
                                                                        world):
    api_key, secret = world
    with serving(app_config, standin_server, phones, f"{NEW},{app_config['DATA_KEY']}", api_key) as both:
        assert signs_in_by_text(both, phones, clock)  # a send record under the new key beside the old ones

    result = rotate_key(app_config, f"{NEW},{app_config['DATA_KEY']}")
    assert result.exit_code == 0, result.output
    assert "secrets re-encrypted: 3; phone look-ups re-hashed: 2." in result.output  # 2 phone rows, 1 app
    assert "Do-not-call entries re-hashed: 1; send records re-hashed: 1." in result.output
    assert "Left as they are: 1 do-not-call entry" in result.output

    with serving(app_config, standin_server, phones, NEW, api_key) as new:
        assert signs_in_by_text(new, phones, clock)
        assert calls_are_refused_as_do_not_call(new, clock)
        assert signs_in_with_the_app(new, secret, clock)
        methods, vault = run_in(new.app, lambda db, svc: (db.scalars(select(Method)).all(), svc.vault))
        for m in methods:
            assert Fernet(NEW).decrypt(m.phone_encrypted or m.totp_secret_encrypted)
            assert m.phone_lookup in (None, vault.keyed_hash(ALICE))
        lookups = run_in(new.app, lambda db, svc: set(db.scalars(select(SendRecord.phone_lookup))))
        assert lookups == {vault.keyed_hash(ALICE)}


def stored_methods(app_config) -> list[tuple]:
    """Every method row's stored secrets and look-ups, read by an app holding only the new key."""
    app = create_app({**app_config, "DATA_KEY": NEW})
    try:
        return run_in(app, lambda db, svc: sorted((m.id, m.phone_encrypted, m.phone_lookup, m.totp_secret_encrypted)
                                                  for m in db.scalars(select(Method))))
    finally:
        app.extensions["mfa"].engine.dispose()


def test_running_rotate_key_twice_changes_nothing_the_second_time(app_config, world):
    key = f"{NEW},{app_config['DATA_KEY']}"
    assert rotate_key(app_config, key).exit_code == 0
    before = stored_methods(app_config)
    again = rotate_key(app_config, key)
    assert again.exit_code == 0, again.output
    assert "secrets re-encrypted: 0; phone look-ups re-hashed: 0." in again.output
    assert "Do-not-call entries re-hashed: 0; send records re-hashed: 0." in again.output
    after = stored_methods(app_config)
    assert after == before


def test_a_run_stopped_after_one_batch_is_finished_by_the_next(app_config, run, clock, bob):
    add_phone(run, bob, ALICE, "mobile", types=("voice", "sms"))
    app = create_app({**app_config, "DATA_KEY": f"{NEW},{app_config['DATA_KEY']}"})
    partial = run_in(app, lambda db, svc: key_rotation.rotate_batch(db, svc.vault, key_rotation.Rotation(), size=1))
    assert partial.secrets_reencrypted == 1
    result = app.test_cli_runner().invoke(args=["data", "rotate-key"])
    assert result.exit_code == 0 and "secrets re-encrypted: 1;" in result.output
    for m in run_in(app, lambda db, svc: db.scalars(select(Method)).all()):
        assert Fernet(NEW).decrypt(m.phone_encrypted).decode() == ALICE
    app.extensions["mfa"].engine.dispose()


def test_a_data_key_missing_the_key_data_was_written_with_stops_with_one_line(app_config, run, bob):
    add_phone(run, bob, ALICE, "mobile", types=("voice",))
    result = rotate_key(app_config, NEW)  # the old key left out before rotating
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1 and "DATA_KEY" in result.output
    assert "Traceback" not in result.output
    still = run(lambda db, svc: [svc.vault.decrypt(m.phone_encrypted) for m in db.scalars(select(Method))])
    assert still == [ALICE]


def test_a_malformed_data_key_stops_rotate_key_with_one_line(tmp_path):
    env = {**os.environ, "DATA_KEY": f"{NEW},not-a-fernet-key", "INSTANCE_PATH": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "data", "rotate-key"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "DATA_KEY must be Fernet keys (url-safe base64 of 32 bytes), comma-separated."]


def test_proving_a_number_by_text_lifts_its_do_not_call_entry_made_under_the_old_key(
        app_config, standin_server, phones, run, clock, world):
    api_key, _ = world
    personas.person(run, "erin", role="admin", region="england")
    with serving(app_config, standin_server, phones, f"{NEW},{app_config['DATA_KEY']}", api_key) as both:
        auth = start_sign_in(both.api, "erin")
        sent = both.api.post(f"/authentications/{auth['id']}/registrations",
                             {"type": "phone", "number": ALICE, "kind": "mobile", "delivery": "sms"})
        assert sent.status_code == 201, sent.text
        phones.wait_idle()
        code = last_code(phones, ALICE)
        assert both.api.post(f"/authentications/{auth['id']}/checks", {"code": code}).json()["status"] == "approved"
        assert not calls_are_refused_as_do_not_call(both, clock)


def test_removing_a_phone_takes_its_twin_even_when_their_hashes_are_under_different_keys(app_config, run):
    from mfa import security_info

    dave = personas.dave(run)
    add_phone(run, dave, ALICE, "mobile", types=("voice", "sms"))  # both rows hashed under the old key
    app = create_app({**app_config, "DATA_KEY": f"{NEW},{app_config['DATA_KEY']}"})

    def half_rotated_then_removed(db, svc):
        voice, sms = sorted(db.scalars(select(Method)), key=lambda m: m.type)[::-1]
        voice.phone_lookup = svc.vault.keyed_hash(ALICE)  # the rotation got this far, then stopped
        db.flush()
        security_info.remove_method(db, svc, voice.user, sms.id, None)
        return db.scalars(select(Method)).all()

    assert run_in(app, half_rotated_then_removed) == []
    app.extensions["mfa"].engine.dispose()


def test_a_phone_apps_push_subscription_is_re_encrypted_with_its_method(app_config, run, clock, bob):
    """The Web Push subscription (a capability URL) is a secret like the others: under the newest key afterwards."""
    import json

    from models import PushDevice

    subscription = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": {"p256dh": "x", "auth": "y"}}

    def add_device(db, svc):
        method = Method(user_id=bob.id, type="push", label="Mobile app: Pixel", created_at=clock.now(),
                        verified_at=clock.now())
        db.add(method)
        db.flush()
        db.add(PushDevice(method_id=method.id, user_id=bob.id, name="Pixel", public_key=b"\x04" + b"\x01" * 64,
                          subscription_encrypted=svc.vault.encrypt(json.dumps(subscription)),
                          enrolment_expires_at=clock.now(), enrolled_at=clock.now(), created_at=clock.now()))

    run(add_device)
    result = rotate_key(app_config, f"{NEW},{app_config['DATA_KEY']}")
    assert result.exit_code == 0, result.output
    assert "secrets re-encrypted: 1;" in result.output
    sealed = run(lambda db, svc: db.scalar(select(PushDevice.subscription_encrypted)))
    assert json.loads(Fernet(NEW).decrypt(sealed)) == subscription
    missing = rotate_key(app_config, Fernet.generate_key().decode())  # neither key it was written with
    assert missing.exit_code != 0 and "DATA_KEY" in missing.output
