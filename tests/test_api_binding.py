"""A sign-in belongs to the API key that started it: any other key, and the pages' own
sign-ins, get 404 on every /authentications/<id> route, and nothing changes."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import ApiKey, AuditEvent, Authentication, Challenge, Method
from mfa import api_keys, authentications
from tests.conftest import PASSWORD, run_in
from tests.helpers import LiveApi, add_phone, last_code, start_sign_in

MOBILE = "+447400123456"


@pytest.fixture
def webmail(live):
    """A second relying application with its own key, on the same server."""
    key = run_in(live.app, lambda db, svc: api_keys.create(db, svc, "webmail"))
    return LiveApi(live.url, key)


def snapshot(app, auth_id):
    """Everything another key's request could have changed."""
    def read(db, _svc):
        auth = db.get(Authentication, auth_id)
        return {
            "auth": (auth.status, auth.reason, auth.attempts, auth.sends, auth.completed_at),
            "challenges": db.scalar(select(func.count()).select_from(Challenge)),
            "methods": db.scalar(select(func.count()).select_from(Method)),
            "audit": db.scalar(select(func.count()).select_from(AuditEvent)),
        }
    return run_in(app, read)


def assert_not_found(response):
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found" and response.json()["message"]


def test_a_sign_in_records_the_api_key_that_started_it(live, bob):
    auth = start_sign_in(live.api)
    key_id = run_in(live.app, lambda db, _: db.scalar(select(ApiKey.id).where(ApiKey.name == "live-tests")))
    assert run_in(live.app, lambda db, _: db.get(Authentication, auth["id"]).api_key_id) == key_id
    assert live.api.get(f"/authentications/{auth['id']}").status_code == 200


def test_another_key_cannot_read_burn_attempts_or_send_for_a_sign_in(live, webmail, phones, bob):
    add_phone(lambda use: run_in(live.app, use), bob, MOBILE)
    auth = start_sign_in(live.api)
    sms = next(m for m in auth["methods"] if m["type"] == "sms")
    before = snapshot(live.app, auth["id"])

    assert_not_found(webmail.get(f"/authentications/{auth['id']}"))
    for _ in range(6):  # more than the 5 wrong codes that would lock the sign-in
        assert_not_found(webmail.post(f"/authentications/{auth['id']}/checks", {"code": "000000"}))
    assert_not_found(webmail.post(f"/authentications/{auth['id']}/challenges", {"method_id": sms["id"]}))

    phones.wait_idle()
    assert phones.messages(to=MOBILE) == [] and phones.calls(to=MOBILE) == []
    assert snapshot(live.app, auth["id"]) == before
    mine = live.api.get(f"/authentications/{auth['id']}").json()
    assert mine["status"] == "mfa_required" and mine["attempts_left"] == 5


def test_another_key_cannot_approve_a_sign_in_with_the_code_texted_to_its_owner(live, webmail, phones, bob):
    add_phone(lambda use: run_in(live.app, use), bob, MOBILE)
    auth = start_sign_in(live.api)
    sms = next(m for m in auth["methods"] if m["type"] == "sms")
    assert live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": sms["id"]}).status_code == 201
    phones.wait_idle()
    code = last_code(phones, MOBILE)

    assert_not_found(webmail.post(f"/authentications/{auth['id']}/checks", {"code": code}))
    assert live.api.get(f"/authentications/{auth['id']}").json()["status"] == "pending"
    assert live.api.post(f"/authentications/{auth['id']}/checks", {"code": code}).json()["status"] == "approved"


def test_another_key_cannot_register_a_method_on_a_sign_in(live, webmail, phones, bob):
    auth = start_sign_in(live.api)
    assert auth["status"] == "registration_required"
    before = snapshot(live.app, auth["id"])
    for body in ({"type": "totp"},
                 {"type": "phone", "number": "07400 123456", "kind": "mobile", "delivery": "sms"}):
        assert_not_found(webmail.post(f"/authentications/{auth['id']}/registrations", body))
    phones.wait_idle()
    assert phones.messages() == []
    assert snapshot(live.app, auth["id"]) == before


def test_a_sign_in_started_on_the_pages_is_not_found_through_the_api(live, bob):
    auth_id = run_in(live.app, lambda db, svc: authentications.start(db, svc, "bob", PASSWORD, "127.0.0.1").id)
    assert_not_found(live.api.get(f"/authentications/{auth_id}"))
    assert_not_found(live.api.post(f"/authentications/{auth_id}/registrations", {"type": "totp"}))
    assert run_in(live.app, lambda db, _: db.scalar(select(func.count()).select_from(Method))) == 0


def test_a_revoked_keys_sign_ins_stay_out_of_reach_of_other_keys(live, webmail, bob, clock):
    auth = start_sign_in(live.api)
    run_in(live.app, lambda db, svc: api_keys.revoke(db, svc, "live-tests"))
    clock.advance(seconds=31)  # past the key cache
    assert live.api.get(f"/authentications/{auth['id']}").status_code == 401
    assert_not_found(webmail.get(f"/authentications/{auth['id']}"))


def sign_in_routes(app):
    """Every API route that names a sign-in, including any added after this test was written."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and "auth_id" in rule.arguments:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield method, rule.rule


def test_every_route_that_names_a_sign_in_answers_404_to_another_key(live, webmail, bob):
    auth = start_sign_in(live.api)
    before = snapshot(live.app, auth["id"])
    routes = list(sign_in_routes(live.app))
    assert len(routes) >= 4  # GET, challenges, checks, registrations
    for method, rule in routes:
        path = rule.replace("<auth_id>", auth["id"]).removeprefix("/api/v1")
        assert "<" not in path, f"{rule}: a route with other arguments needs a case here"
        response = webmail.http.request(method, webmail.base + path, json={"type": "totp", "code": "123456"},
                                        timeout=15)
        assert_not_found(response)
    assert snapshot(live.app, auth["id"]) == before


# --- revoking a key: every worker refuses it within KEY_CACHE_SECONDS ---------------


@pytest.fixture
def workers(app_config):
    """Two instances of the app on one database, as two gunicorn workers would be."""
    from app import create_app

    apps = [create_app(app_config), create_app(app_config)]
    yield apps
    for each in apps:
        each.extensions["mfa"].engine.dispose()


def create_sign_in(app, key):
    return app.test_client().post("/api/v1/authentications", json={"username": "bob", "password": PASSWORD},
                                  headers={"Authorization": f"Bearer {key}"}).status_code


def test_a_revoked_key_works_only_until_each_workers_cache_expires(workers, app_config, bob, clock):
    import api
    from app import create_app

    first, second = workers
    key = run_in(first, lambda db, svc: api_keys.create(db, svc, "portal"))
    assert create_sign_in(first, key) == create_sign_in(second, key) == 201  # both have it cached now
    run_in(first, lambda db, svc: api_keys.revoke(db, svc, "portal"))

    fresh = create_app(app_config)  # a worker that had not seen the key
    try:
        assert create_sign_in(fresh, key) == 401
    finally:
        fresh.extensions["mfa"].engine.dispose()
    clock.advance(seconds=api.KEY_CACHE_SECONDS - 1)
    assert create_sign_in(first, key) == create_sign_in(second, key) == 201  # the documented delay
    clock.advance(seconds=2)
    assert create_sign_in(first, key) == create_sign_in(second, key) == 401


def test_each_app_has_its_own_key_cache(workers):
    first, second = workers
    assert first.extensions["mfa_api_keys"] is not second.extensions["mfa_api_keys"]
