"""Rate limits: every API operation, the phone app's API and the pages' forms answer 429 at their
limit; the numbers are the ones GET /api/v1/limits publishes and docs/limits.md lists; instances
share counts through Redis; a dead Redis never fails a request.

The app here runs with small limits (SMALL) so each test needs only a handful of requests.
"""
from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from app import create_app
from mfa import api_keys, app_passwords, limits
from settings import SettingsError
from tests.conftest import PASSWORD, run_in
from tests.helpers import ApiClient, close_rate_limit_store, start_sign_in
from tests.test_pages_errors import assert_service_page

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"RATE_LIMIT_API_REQUESTS": "6", "RATE_LIMIT_API_SIGN_INS": "3", "RATE_LIMIT_APP_PASSWORD_CHECKS": "3",
         "RATE_LIMIT_SIGN_INS_PER_PERSON": "2", "RATE_LIMIT_PAGE_SIGN_INS": "4", "RATE_LIMIT_PAGE_FORMS": "5",
         "RATE_LIMIT_DEVICE_REQUESTS": "4"}
REDIS_URL = "redis://127.0.0.1:6379/0"  # the machine's Redis: each test uses a prefix of its own
EDGE_LIMITS = [limits.API_REQUESTS, limits.API_SIGN_INS, limits.API_APP_PASSWORD_CHECKS,
               limits.SIGN_INS_PER_PERSON_AND_ADDRESS, limits.PAGE_SIGN_INS, limits.PAGE_FORMS, limits.DEVICE_REQUESTS]
NO_SUCH_ID = "0" * 32


@pytest.fixture
def app_config(app_config):
    return {**app_config, **SMALL}


def new_key(app, name: str | None = None) -> str:
    return run_in(app, lambda db, svc: api_keys.create(db, svc, name or f"key {secrets.token_hex(4)}"))


def api_client(app) -> ApiClient:
    return ApiClient(app.test_client(), new_key(app))


def number(app, name: str) -> int:
    return app.extensions["mfa"].services.limits.number(name)


def assert_rate_limited_json(response, name: str | None = None) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "rate_limited" and body["message"]
    assert isinstance(body["retry_after"], int) and 1 <= body["retry_after"] <= 60
    assert response.headers["Retry-After"] == str(body["retry_after"])
    if name is not None:
        assert body["limit"] == name


def until_refused(send: Callable[[int], Any], most: int = 40) -> tuple[int, Any]:
    """Send until the first 429: (how many were answered before it, the 429)."""
    for n in range(most):
        response = send(n)
        if response.status_code == 429:
            return n, response
        assert response.status_code < 500, response.get_data(as_text=True)
    raise AssertionError(f"no 429 in {most} requests")


# --- every /api/v1 operation ----------------------------------------------------------------

def _sign_in(api: ApiClient) -> str:
    return start_sign_in(api, "bob", expect="registration_required")["id"]


# (what is sent, whether it needs a sign-in of the key's own, the limit that stops it)
API_OPERATIONS = {
    "POST /authentications": (lambda api, _id, n: api.post("/authentications",
                                                          {"username": f"nobody{n}", "password": "wrong password"}),
                              False, limits.API_SIGN_INS),
    "GET /authentications/{id}": (lambda api, auth_id, n: api.get(f"/authentications/{auth_id}"),
                                  True, limits.API_REQUESTS),
    "GET /authentications/{another key's id}": (lambda api, _id, n: api.get(f"/authentications/{NO_SUCH_ID}"),
                                                False, limits.API_REQUESTS),
    "POST /authentications/{id}/challenges": (lambda api, auth_id, n: api.post(
        f"/authentications/{auth_id}/challenges", {"method_id": NO_SUCH_ID}), True, limits.API_REQUESTS),
    "POST /authentications/{id}/checks": (lambda api, auth_id, n: api.post(
        f"/authentications/{auth_id}/checks", {"code": "000000"}), True, limits.API_REQUESTS),
    "POST /authentications/{id}/registrations": (lambda api, auth_id, n: api.post(
        f"/authentications/{auth_id}/registrations", {"type": "totp"}), True, limits.API_REQUESTS),
    "POST /authentications/{id}/recovery-codes": (lambda api, auth_id, n: api.post(
        f"/authentications/{auth_id}/recovery-codes", {}), True, limits.API_REQUESTS),
    "POST /app-passwords/verify": (lambda api, _id, n: api.post(
        "/app-passwords/verify", {"username": f"nobody{n}", "app_password": "abcd efgh ijkl mnop"}),
        False, limits.API_APP_PASSWORD_CHECKS),
    "GET /openapi.json": (lambda api, _id, n: api.get("/openapi.json"), False, limits.API_REQUESTS),
    "GET /limits": (lambda api, _id, n: api.get("/limits"), False, limits.API_REQUESTS),
}


@pytest.mark.parametrize("operation", list(API_OPERATIONS))
def test_every_api_operation_answers_429_with_retry_after_at_its_limit(app, bob, operation):
    send, needs_sign_in, name = API_OPERATIONS[operation]
    api = api_client(app)
    auth_id = _sign_in(api) if needs_sign_in else None  # one request of the key's allowance
    before, refused = until_refused(lambda n: send(api, auth_id, n))
    assert before + (1 if needs_sign_in else 0) == number(app, name)
    assert_rate_limited_json(refused, name)
    assert refused.headers["Cache-Control"] == "no-store"
    # The limit is the key's: another key is still answered.
    assert send(api_client(app), auth_id, 99).status_code != 429


def test_every_api_route_is_in_the_table_above(app):
    routes = {f"{sorted(r.methods - {'HEAD', 'OPTIONS'})[0]} {r.rule.removeprefix('/api/v1')}"
              for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")}
    tested = {re.sub(r"\{[^}]*\}", "<auth_id>", op) for op in API_OPERATIONS}
    assert routes <= tested


def test_the_phone_apps_api_answers_429_per_source_address(app):
    client = app.test_client()
    before, refused = until_refused(lambda n: client.get("/device/v1/config"))
    assert before == number(app, limits.DEVICE_REQUESTS)
    assert_rate_limited_json(refused, limits.DEVICE_REQUESTS)
    assert client.get("/device/v1/config", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200


# --- pages ----------------------------------------------------------------------------------

def csrf_token(client, address: str) -> str:
    page = client.get("/sign-in", environ_base={"REMOTE_ADDR": address}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    return token.group(1)


def page_sign_in(client, address: str, username: str, password: str = "wrong password"):
    return client.post("/sign-in", data={"csrf_token": csrf_token(client, address), "username": username,
                                         "password": password}, environ_base={"REMOTE_ADDR": address})


def test_every_page_form_is_limited_per_source_address_with_the_services_page(app):
    client, address = app.test_client(), "192.0.2.10"
    before, refused = until_refused(lambda n: client.post("/sign-out", data={"csrf_token": csrf_token(client, address)},
                                                          environ_base={"REMOTE_ADDR": address}))
    assert before == number(app, limits.PAGE_FORMS)
    assert_service_page(refused, 429, "You've tried too many times")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    other = client.post("/sign-out", data={"csrf_token": csrf_token(client, "192.0.2.11")},
                        environ_base={"REMOTE_ADDR": "192.0.2.11"})
    assert other.status_code == 302


def test_the_sign_in_form_has_its_own_lower_limit(app):
    client, address = app.test_client(), "192.0.2.20"
    before, refused = until_refused(lambda n: page_sign_in(client, address, f"nobody{n}"))
    assert before == number(app, limits.PAGE_SIGN_INS) < number(app, limits.PAGE_FORMS)
    assert_service_page(refused, 429, "You've tried too many times")
    assert "Retry-After" in refused.headers


def test_failed_passwords_for_one_person_from_one_address_are_limited_across_api_and_pages(app_config, bob):
    app = create_app({**app_config, "RATE_LIMIT_API_SIGN_INS": "50", "RATE_LIMIT_API_REQUESTS": "50"})
    api = api_client(app)
    for _ in range(3):  # right passwords do not count: many people behind one address sign in fine
        assert api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 201
    wrong = {"username": " BOB ", "password": "wrong password"}  # the username as the service compares it
    allowed = number(app, limits.SIGN_INS_PER_PERSON_AND_ADDRESS)
    assert [api.post("/authentications", wrong).status_code for _ in range(allowed)] == [401] * allowed
    refused = api.post("/authentications", {"username": "bob", "password": PASSWORD})
    assert_rate_limited_json(refused, limits.SIGN_INS_PER_PERSON_AND_ADDRESS)
    # The page at the same address shares the count; another person, or another address, does not.
    assert_service_page(page_sign_in(app.test_client(), "127.0.0.1", "bob", PASSWORD), 429,
                        "You've tried too many times")
    assert api.post("/authentications", {"username": "alice", "password": "wrong password"}).status_code == 401
    assert page_sign_in(app.test_client(), "192.0.2.30", "bob", PASSWORD).status_code == 302
    # App-password checks are not counted here: guessing at sign-in never stops a mail program.
    check = {"username": "bob", "app_password": "abcd efgh ijkl mnop"}
    assert api.post("/app-passwords/verify", check).status_code == 401
    app.extensions["mfa"].engine.dispose()


# --- only failures count: nobody can refuse a right password by sending junk first ----------

def test_right_passwords_through_one_api_key_never_use_up_its_sign_in_limit(app_config, bob):
    app = create_app({**app_config, "RATE_LIMIT_API_REQUESTS": "100", "RATE_LIMIT_SIGN_INS_PER_PERSON": "100"})
    api, allowed = api_client(app), number(app, limits.API_SIGN_INS)
    right = {"username": "bob", "password": PASSWORD}
    assert [api.post("/authentications", right).status_code for _ in range(3 * allowed)] == [201] * (3 * allowed)
    wrong = [api.post("/authentications", {"username": f"nobody{n}", "password": "wrong"}).status_code
             for n in range(allowed)]
    assert wrong == [401] * allowed
    assert_rate_limited_json(api.post("/authentications", right), limits.API_SIGN_INS)  # the trade-off
    app.extensions["mfa"].engine.dispose()


def test_right_passwords_from_one_address_never_use_up_its_page_sign_in_limit(app_config, bob):
    app = create_app({**app_config, "RATE_LIMIT_PAGE_FORMS": "100", "RATE_LIMIT_SIGN_INS_PER_PERSON": "100"})
    address, allowed = "192.0.2.60", number(app, limits.PAGE_SIGN_INS)  # a hospital's shared NAT
    answers = [page_sign_in(app.test_client(), address, "bob", PASSWORD).status_code for _ in range(3 * allowed)]
    assert answers == [302] * (3 * allowed)
    assert [page_sign_in(app.test_client(), address, f"nobody{n}").status_code
            for n in range(allowed)] == [401] * allowed
    assert_service_page(page_sign_in(app.test_client(), address, "bob", PASSWORD), 429,
                        "You've tried too many times")
    app.extensions["mfa"].engine.dispose()


def test_ipv6_addresses_in_one_64_share_the_per_address_limits(app):
    client, allowed = app.test_client(), number(app, limits.PAGE_SIGN_INS)
    statuses = [page_sign_in(client, f"2001:db8:1:2::{n + 1:x}", f"nobody{n}").status_code for n in range(70)]
    assert 429 in statuses and statuses.index(429) == allowed  # rotating within the /64 earns nothing
    assert page_sign_in(client, "2001:db8:1:3::1", "nobody").status_code == 401  # the next /64 is another source
    # An IPv4-mapped IPv6 address is its IPv4 address.
    assert [page_sign_in(client, "192.0.2.70", f"nobody{n}").status_code for n in range(allowed)] == [401] * allowed
    assert_service_page(page_sign_in(client, "::ffff:192.0.2.70", "nobody"), 429, "You've tried too many times")


def test_app_password_checks_and_sign_ins_do_not_use_up_each_others_allowance(app_config, bob):
    app = create_app({**app_config, "RATE_LIMIT_API_REQUESTS": "100", "RATE_LIMIT_APP_PASSWORD_CHECKS": "100",
                      "RATE_LIMIT_API_SIGN_INS": "100"})
    _, app_password = run_in(app, lambda db, svc: app_passwords.create(db, svc, db.merge(bob), "Mail"))
    api, allowed = api_client(app), number(app, limits.SIGN_INS_PER_PERSON_AND_ADDRESS)
    wrong_app_password = {"username": "bob", "app_password": "abcd efgh ijkl mnop"}
    # A flood of wrong app passwords (a mail gateway's address) leaves the person's sign-ins alone...
    floods = [api.post("/app-passwords/verify", wrong_app_password).status_code for _ in range(3 * allowed)]
    assert floods == [401] * (3 * allowed)
    wrong = {"username": "bob", "password": "wrong password"}
    assert [api.post("/authentications", wrong).status_code for _ in range(allowed)] == [401] * allowed
    assert_rate_limited_json(api.post("/authentications", wrong), limits.SIGN_INS_PER_PERSON_AND_ADDRESS)
    # ...and guessing at sign-in never stops the right app password.
    check = api.post("/app-passwords/verify", {"username": "bob", "app_password": app_password})
    assert check.status_code == 200 and check.get_json() == {"valid": True}
    app.extensions["mfa"].engine.dispose()


def test_the_catalogue_counts_only_failed_sign_ins_with_the_published_defaults():
    assert (limits.BY_NAME[limits.API_SIGN_INS].default, limits.BY_NAME[limits.PAGE_SIGN_INS].default) == (300, 60)
    for name in (limits.API_SIGN_INS, limits.PAGE_SIGN_INS, limits.SIGN_INS_PER_PERSON_AND_ADDRESS):
        assert limits.BY_NAME[name].counts.startswith("failed ")
    assert "app-password checks not counted" in limits.BY_NAME[limits.SIGN_INS_PER_PERSON_AND_ADDRESS].counts
    text = (ROOT / "docs" / "limits.md").read_text()
    assert "sign-ins for everyone for a minute" in text and "/64" in text


# --- published numbers ----------------------------------------------------------------------

def test_the_published_limits_are_the_catalogue_with_the_settings_applied(app):
    published = api_client(app).get("/limits")
    assert published.status_code == 200 and published.headers["Cache-Control"] == "no-store"
    entries = {entry["name"]: entry for entry in published.get_json()["limits"]}
    assert list(entries) == [limit.name for limit in limits.CATALOGUE]
    for limit in limits.CATALOGUE:
        assert set(entries[limit.name]) == {"name", "counts", "per", "window_seconds", "limit", "effect", "setting"}
        assert entries[limit.name]["setting"] == limit.setting and entries[limit.name]["per"] == limit.per
        expected = int(SMALL[limit.setting]) if limit.setting in SMALL else limit.default
        assert entries[limit.name]["limit"] == expected


def _drive(app, name: str) -> Callable[[int], Any]:
    """One more request counted by the limit `name`, and nothing stricter, from a fresh caller."""
    api = api_client(app)
    client, address = app.test_client(), f"198.51.100.{secrets.randbelow(250) + 1}"
    return {
        limits.API_REQUESTS: lambda n: api.get("/openapi.json"),
        limits.API_SIGN_INS: lambda n: api.post("/authentications", {"username": f"u{n}", "password": "wrong!"}),
        limits.API_APP_PASSWORD_CHECKS: lambda n: api.post("/app-passwords/verify",
                                                           {"username": f"u{n}", "app_password": "wrong!"}),
        limits.SIGN_INS_PER_PERSON_AND_ADDRESS: lambda n: api.post("/authentications",
                                                                   {"username": "bob", "password": "wrong!"}),
        limits.PAGE_SIGN_INS: lambda n: page_sign_in(client, address, f"u{n}"),
        limits.PAGE_FORMS: lambda n: client.post("/sign-out", data={"csrf_token": csrf_token(client, address)},
                                                 environ_base={"REMOTE_ADDR": address}),
        limits.DEVICE_REQUESTS: lambda n: client.get("/device/v1/config", environ_base={"REMOTE_ADDR": address}),
    }[name]


@pytest.mark.parametrize("name", EDGE_LIMITS)
def test_each_limit_refuses_the_request_after_the_number_it_publishes(app, bob, name):
    published = {e["name"]: e for e in api_client(app).get("/limits").get_json()["limits"]}[name]
    send = _drive(app, name)
    for n in range(published["limit"]):
        assert send(n).status_code != 429, f"{name}: refused after {n}, publishes {published['limit']}"
    assert send(published["limit"]).status_code == 429


# --- Redis: shared by instances, and never a 500 when gone -----------------------------------

@pytest.fixture
def machine_redis():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    prefix = f"test-{secrets.token_hex(8)}"
    yield client, prefix
    for key in client.scan_iter(match=f"*{prefix}*"):  # only this test's counts: never FLUSHALL
        client.delete(key)
    client.close()


def test_two_instances_on_one_redis_share_one_count(app_config, machine_redis):
    store, prefix = machine_redis
    config = {**app_config, "REDIS_URL": REDIS_URL, "RATE_LIMIT_KEY_PREFIX": prefix}
    first, second = create_app(config), create_app(config)
    key = new_key(first)  # one database: the key is valid on both
    one, two = ApiClient(first.test_client(), key), ApiClient(second.test_client(), key)
    wrong = {"username": "nobody", "password": "wrong password"}
    answers = [one.post("/authentications", wrong).status_code, two.post("/authentications", wrong).status_code,
               one.post("/authentications", {**wrong, "username": "somebody"}).status_code]
    assert answers == [401, 401, 401]  # 3 = RATE_LIMIT_API_SIGN_INS, counted once across both
    assert_rate_limited_json(two.post("/authentications", {**wrong, "username": "else"}), limits.API_SIGN_INS)
    assert_rate_limited_json(one.post("/authentications", {**wrong, "username": "else"}), limits.API_SIGN_INS)
    assert list(store.scan_iter(match=f"*{prefix}*"))  # the counts are in Redis, under this prefix
    for app in (first, second):
        close_rate_limit_store(app)
        app.extensions["mfa"].engine.dispose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_redis_unreachable_requests_are_answered_and_still_limited_in_process(app_config, bob):
    app = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"})
    api = api_client(app)
    assert api.get("/limits").status_code == 200
    assert [api.post("/authentications", {"username": f"nobody{n}", "password": "wrong password"}).status_code
            for n in range(3)] == [401, 401, 401]
    assert_rate_limited_json(api.post("/authentications", {"username": "bob", "password": PASSWORD}),
                             limits.API_SIGN_INS)
    assert page_sign_in(app.test_client(), "192.0.2.40", "bob", PASSWORD).status_code == 302
    assert app.test_client().get("/device/v1/config").status_code == 200
    close_rate_limit_store(app)
    app.extensions["mfa"].engine.dispose()


# --- settings and documentation ---------------------------------------------------------------

@pytest.mark.parametrize("value", ["ten", "0", "-5", "1.5", "²"])
def test_a_malformed_limit_setting_stops_start_up_with_one_line_naming_it(app_config, value):
    with pytest.raises(SettingsError) as stopped:
        create_app({**app_config, "RATE_LIMIT_API_SIGN_INS": value})
    assert "RATE_LIMIT_API_SIGN_INS" in str(stopped.value) and "\n" not in str(stopped.value)


def test_a_malformed_key_prefix_stops_start_up_naming_it(app_config):
    with pytest.raises(SettingsError, match="RATE_LIMIT_KEY_PREFIX"):
        create_app({**app_config, "RATE_LIMIT_KEY_PREFIX": "has spaces"})


def _table(markdown: str, header: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_docs_limits_lists_every_limit_as_the_catalogue_has_it():
    rows = _table((ROOT / "docs" / "limits.md").read_text(),
                  "| name | setting | counts | per | window (s) | default | at the limit |")
    documented = [(name.strip("`"), setting.strip("`"), counts, per.strip("`"), int(window), int(default),
                   effect.split(":")[0].strip("`")) for name, setting, counts, per, window, default, effect in rows]
    assert documented == [(limit.name, limit.setting, limit.counts, limit.per, limit.window_seconds, limit.default,
                           limit.effect) for limit in limits.CATALOGUE]


def test_docs_configuration_lists_every_limit_setting_with_its_default():
    text = (ROOT / "docs" / "configuration.md").read_text()
    for limit in limits.CATALOGUE:
        default = limit.window_seconds if limit.setting_is_window else limit.default
        assert re.search(rf"^\| `{limit.setting}` \|.*\| `{default}` \|$", text, re.M), limit.setting
    assert "| `TELEPHONY_ALLOWED_COUNTRIES` |" in text and "| `RATE_LIMIT_KEY_PREFIX` |" in text
