"""Push rules checked through the test client: the phone cap when a phone is saved, and the
settings that decide where Web Push may go."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from authenticator import signing
from devices.webpush import WebPushSender
from mfa import push_enrolment, security_info
from mfa.webpush_keys import generate_vapid_private_key
from models import Method
from settings import SettingsError, load
from tests.helpers import start_sign_in
from tests.test_ops import production_environ


def signed(client, clock, key, method, path, body, device_id):
    raw = json.dumps(body).encode() if body is not None else b""
    headers = signing.sign_request(key, method, path, raw, device_id, now=int(clock.now().timestamp()))
    return client.open(path, method=method, data=raw, headers={**headers, "Content-Type": "application/json"})


def enrol(client, clock, url: str):
    key = signing.new_private_key()
    token = url.split("#enrol=")[1]
    answer = signed(client, clock, key, "POST", "/device/v1/enrol",
                    {"token": token, "public_key": signing.public_key_b64(key), "name": "Pixel"}, "")
    assert answer.status_code == 201, answer.json
    return key, answer.json["device_id"]


def pushes(run, username="bob"):
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(Method).where(
        Method.type == "push", Method.verified_at.is_not(None))))


def test_the_phone_cap_is_counted_again_when_the_phone_is_saved(api, client, run, clock, bob):
    """Two set-ups started side by side both pass the cap when they begin; the second to be
    approved is refused, and nothing about it changes."""
    auth = start_sign_in(api, expect="registration_required")
    first = api.post(f"/authentications/{auth['id']}/registrations", {"type": "push"}).json
    key, device = enrol(client, clock, first["enrolment_url"])
    number = api.post(f"/authentications/{auth['id']}/challenges", {"method_id": first["method_id"]}).json
    request_id = signed(client, clock, key, "GET", "/device/v1/requests", None, device).json["requests"][0]["id"]
    done = signed(client, clock, key, "POST", f"/device/v1/requests/{request_id}/approve",
                  {"number": number["number_match"]}, device)
    assert done.status_code == 200 and pushes(run) == 1
    # A change opened now, then the person reaches the cap from elsewhere before approving it.
    change = run(lambda db, svc: security_info.begin_change(db, svc, db.merge(bob), "127.0.0.1"))
    started = run(lambda db, svc: push_enrolment.register_push(db, svc, change.id, "127.0.0.1"))
    key2, device2 = enrol(client, clock, started.url)

    def fill_up(db, svc):
        for n in range(push_enrolment.MAX_DEVICES - 1):
            db.add(Method(user_id=bob.id, type="push", label=f"Mobile app: {n}", created_at=clock.now(),
                          verified_at=clock.now()))
    run(fill_up)
    from mfa import challenges
    from mfa.unit_of_work import Transactions
    with client.application.extensions["mfa"].sessions() as s:
        challenge = challenges.start_challenge(Transactions(s), client.application.extensions["mfa"].services,
                                               change.id, started.method.id, "127.0.0.1")
        request_id, number_match = challenge.id, challenge.number_match
    refused = signed(client, clock, key2, "POST", f"/device/v1/requests/{request_id}/approve",
                     {"number": number_match}, device2)
    assert refused.status_code == 422 and refused.json["error"] == "too_many_devices"
    assert pushes(run) == push_enrolment.MAX_DEVICES
    waiting = signed(client, clock, key2, "GET", "/device/v1/requests", None, device2).json["requests"]
    assert [r["id"] for r in waiting] == [request_id]  # still waiting: nothing changed


def settings_with(tmp_path, **env):
    base = {"MFA_ENV": "development", "WEBPUSH_VAPID_PRIVATE_KEY": generate_vapid_private_key(),
            "WEBPUSH_SUBJECT": "mailto:ops@example.org"}
    return load({**base, **env}, tmp_path)


@pytest.mark.parametrize("hosts, endpoint, allowed", [
    ("", "https://fcm.googleapis.com/fcm/send/x", True),  # the default list
    ("", "https://web.push.apple.com/abc", True),
    ("", "https://evil.example/push", False),
    ("", "https://googleapis.com.evil.example/x", False),
    ("", "http://fcm.googleapis.com/fcm/send/x", False),  # https only
    ("", "https://user:pw@fcm.googleapis.com/x", False),
    ("127.0.0.1", "http://127.0.0.1:8080/push/x", True),  # loopback http only when listed exactly
    ("[::1]", "http://[::1]:8080/push/x", True),
    ("localhost", "http://127.0.0.1:8080/push/x", False),
    ("", "http://127.0.0.1:8080/push/x", False),
    (".example.org", "http://push.example.org/x", False),
    (".example.org", "https://push.example.org/x", True),
    ("push.example.org", "https://other.example.org/x", False),
    ("", "https://fcm.googleapis.com:notaport/x", False),
    ("", "https://fcm.googleapis.com:22/x", False),  # a push service's other ports are never asked for
    ("", "https://fcm.googleapis.com:443/x", True),
    ("", "https://mybucket.storage.googleapis.com/x", False),  # only the push services, not all of Google
    ("", "https://localhost\\.googleapis.com/x", False),  # requests would connect to localhost
    ("", "https://127.0.0.1\\.fcm.googleapis.com/x", False),
    ("", "https://fcm.googleapis.com/x y", False),
    ("", "https://fcm.googleapis.com/x#frag", False),
    ("", "https://wns2-par02p.notify.windows.com/w/?token=abc%2B", True),
    ("", "https://updates.push.services.mozilla.com/wpush/v2/gAAAA", True),
])
def test_web_push_goes_only_to_the_listed_push_services(tmp_path, hosts, endpoint, allowed):
    settings = settings_with(tmp_path, **({"WEBPUSH_ENDPOINT_HOSTS": hosts} if hosts else {}))
    sender = WebPushSender(settings.webpush_vapid_private_key, settings.webpush_subject,
                           settings.webpush_endpoint_hosts)
    assert sender.accepts_endpoint(endpoint) is allowed


@pytest.mark.parametrize("env, named", [
    ({"WEBPUSH_VAPID_PRIVATE_KEY": "not-a-key"}, "WEBPUSH_VAPID_PRIVATE_KEY"),
    ({"WEBPUSH_SUBJECT": ""}, "WEBPUSH_SUBJECT"),
    ({"WEBPUSH_SUBJECT": "ops@example.org"}, "WEBPUSH_SUBJECT"),
    ({"WEBPUSH_SUBJECT": "mailto:mfa-admin@nhs"}, "WEBPUSH_SUBJECT"),  # pywebpush would refuse it at every push
    ({**production_environ(), "WEBPUSH_ENDPOINT_HOSTS": "127.0.0.1"}, "WEBPUSH_ENDPOINT_HOSTS"),
    ({"WEBPUSH_ENDPOINT_HOSTS": "https://fcm.googleapis.com"}, "WEBPUSH_ENDPOINT_HOSTS"),
    ({"WEBPUSH_ENDPOINT_HOSTS": "fcm.googleapis.com/path"}, "WEBPUSH_ENDPOINT_HOSTS"),
])
def test_a_malformed_web_push_setting_stops_start_up_naming_it(tmp_path, env, named):
    with pytest.raises(SettingsError) as stopped:
        settings_with(tmp_path, **env)
    assert named in str(stopped.value)


# --- the migration --------------------------------------------------------------------------------

def test_the_migration_upgrades_a_0003_database_with_its_methods_and_downgrades(scratch_database, clock):
    """People upgrade from any earlier version: their methods and challenges stay, push tables appear."""
    from alembic import command
    from sqlalchemy import inspect, text

    from cli.database import alembic_config, upgrade
    from models.database import make_engine
    from tests.conftest import stored_now

    url, pg = scratch_database
    config = alembic_config(url)
    command.upgrade(config, "0003")
    engine = make_engine(url)  # as the app makes it: SQLite enforces foreign keys
    now = {"now": stored_now(clock, pg)}
    with engine.begin() as conn:
        assert "push_devices" not in inspect(conn).get_table_names()
        conn.execute(text("INSERT INTO users (id, username, password_hash, role, region, hybrid, language, "
                          "failed_count, created_at) VALUES ('u1', 'old.person', 'x', 'admin', 'england', false, "
                          "'en-GB', 0, :now)"), now)
        conn.execute(text("INSERT INTO methods (id, user_id, type, label, is_default, created_at, verified_at) "
                          "VALUES ('m1', 'u1', 'totp', 'Authenticator app', true, :now, :now)"), now)
    upgrade(url)
    with engine.begin() as conn:
        tables = set(inspect(conn).get_table_names())
        assert {"push_devices", "device_nonces"} <= tables
        assert "answered_at" in {c["name"] for c in inspect(conn).get_columns("challenges")}
        assert conn.execute(text("SELECT label FROM methods")).scalar_one() == "Authenticator app"
        conn.execute(text("INSERT INTO push_devices (id, method_id, user_id, enrolment_expires_at, created_at) "
                          "VALUES ('d1', 'm1', 'u1', :now, :now)"), now)
        conn.execute(text("DELETE FROM methods WHERE id = 'm1'"))  # a removed method takes its phone with it
        assert conn.execute(text("SELECT count(*) FROM push_devices")).scalar_one() == 0
    command.downgrade(config, "0003")
    with engine.begin() as conn:
        assert "push_devices" not in inspect(conn).get_table_names()
        assert "answered_at" not in {c["name"] for c in inspect(conn).get_columns("challenges")}
    upgrade(url)
    engine.dispose()
