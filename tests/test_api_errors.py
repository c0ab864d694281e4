"""Bad input gets its 4xx JSON error, never a stack trace, and changes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import Authentication, AuditEvent
from tests.conftest import PASSWORD


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer mfa_not-a-real-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer"},
])
def test_requests_without_a_valid_api_key_get_401(client, bob, headers):
    response = client.post("/api/v1/authentications", json={"username": "bob", "password": PASSWORD}, headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_api_key"
    assert response.json["message"]


@pytest.mark.parametrize("body, content_type", [
    ("not json", "application/json"),
    ("[1, 2]", "application/json"),
    ('{"username": "bob"', "application/json"),
    ('{"username": "bob", "password": "x"}', "text/plain"),
])
def test_malformed_bodies_get_400_and_leave_no_trace(api, bob, session, body, content_type):
    before = count(session, AuditEvent)
    response = api.post("/authentications", data=body, content_type=content_type)
    assert response.status_code == 400
    assert response.json["error"] == "bad_request"
    assert count(session, AuditEvent) == before


@pytest.mark.parametrize("body", [
    {},
    {"username": "bob"},
    {"username": 5, "password": PASSWORD},
    {"username": "bob", "password": None},
    {"username": ["bob"], "password": PASSWORD},
    {"username": "x" * 300, "password": PASSWORD},
])
def test_missing_or_wrong_typed_fields_get_400(api, bob, session, body):
    response = api.post("/authentications", body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "bad_request"
    assert count(session, Authentication) == 0


def test_oversized_bodies_get_413_as_json(api, bob):
    response = api.post("/authentications", {"username": "bob", "password": "x" * 100_000})
    assert response.status_code == 413
    assert response.json["error"] == "too_large"


@pytest.mark.parametrize("path", [
    "/authentications/nope",
    "/authentications/" + "a" * 200,
])
def test_unknown_authentications_get_404(api, path):
    response = api.get(path)
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_unknown_routes_under_the_api_answer_json(api):
    response = api.get("/no-such-thing")
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_wrong_method_answers_405_as_json(api):
    response = api.client.delete("/api/v1/authentications", headers=api._headers())
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"


@pytest.mark.parametrize("code", [None, 123456, "", " ", "1" * 100])
def test_checks_with_a_malformed_code_get_400_and_use_no_attempt(api, bob, code):
    auth = api.post("/authentications", {"username": "bob", "password": PASSWORD}).json
    response = api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert response.status_code == 400 and response.json["error"] == "bad_request"
    assert api.get(f"/authentications/{auth['id']}").json["attempts_left"] == 5


def test_registration_with_an_unknown_type_gets_400(api, bob):
    auth = api.post("/authentications", {"username": "bob", "password": PASSWORD}).json
    response = api.post(f"/authentications/{auth['id']}/registrations", {"type": "carrier-pigeon"})
    assert response.status_code == 400


def test_challenges_for_unknown_methods_get_422(api, bob):
    auth = api.post("/authentications", {"username": "bob", "password": PASSWORD}).json
    response = api.post(f"/authentications/{auth['id']}/challenges", {"method_id": "nope"})
    # bob is still registering, so no challenge can start at all
    assert response.status_code == 409 and response.json["error"] == "not_pending"


def test_a_crash_answers_json_without_a_trace(app, api, monkeypatch):
    from mfa import authentications

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(authentications, "start", explode)
    app.config["TESTING"] = False  # let the error handler answer, as in production
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = api.post("/authentications", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 500
    assert response.json == {"error": "server_error", "message": "Something went wrong on our side."}
    assert b"secret internals" not in response.data
