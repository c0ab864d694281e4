"""Hostile bodies on every POST endpoint get 400 bad_request (never a 500) and change nothing;
every API answer says Cache-Control: no-store, and in production every answer carries HSTS."""
from __future__ import annotations

import io
import json
import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from api.json_input import MAX_DEPTH, nesting_exceeds
from app import create_app
from models import AuditEvent, Authentication, Challenge, Method
from ops import logs
from tests.conftest import PASSWORD

HSTS = "max-age=31536000; includeSubDomains"

# The five POST endpoints; {id} is a sign-in the calling key owns.
POSTS = [
    "/authentications",
    "/authentications/{id}/challenges",
    "/authentications/{id}/checks",
    "/authentications/{id}/registrations",
    "/app-passwords/verify",
]


def nested(kind: str, depth: int) -> str:
    if kind == "arrays":
        return "[" * depth + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


def counts(session):
    session.expire_all()
    return [session.scalar(select(func.count()).select_from(t))
            for t in (Authentication, Challenge, Method, AuditEvent)]


@pytest.fixture
def auth_id(api, bob):
    response = api.post("/authentications", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 201
    return response.json["id"]


def post_raw(api, path: str, auth_id: str, data, content_type="application/json"):
    return api.post(path.format(id=auth_id), data=data, content_type=content_type)


def assert_bad_request(response):
    assert response.status_code == 400, (response.status_code, response.data[:300])
    assert response.json["error"] == "bad_request" and response.json["message"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("body", [
    nested("arrays", 1000),
    nested("objects", 1000),
    '{"username": ' + nested("arrays", 1000) + ', "password": "x"}',
    '{"code": ' + nested("objects", 5000) + "}",
    nested("arrays", MAX_DEPTH + 1),
    "[" * 30_000,  # unterminated
], ids=["arrays-1000", "objects-1000", "inside-a-field", "objects-5000", "just-past-the-limit", "unterminated"])
def test_deeply_nested_json_gets_400_on_every_post_endpoint(api, auth_id, session, path, body):
    before = counts(session)
    assert_bad_request(post_raw(api, path, auth_id, body))
    assert counts(session) == before


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("data, content_type", [
    ("[]", "application/json"),
    ('"bob"', "application/json"),
    ("17", "application/json"),
    ("null", "application/json"),
    ("true", "application/json"),
    ("", "application/json"),
    ("{", "application/json"),
    ('{"username": NaN, "code": Infinity}', "application/json"),
    ('{"username": "bob", "password": "x"}', "text/plain"),
    ('{"username": "bob", "password": "x"}', "application/x-www-form-urlencoded"),
    ('{"username": "bob", "password": "x"}', ""),
    (b'{"username": "b\xffob", "password": "x"}', "application/json"),  # not UTF-8
    ('{"username": "bob", "password": "x"}'.encode("utf-16"), "application/json"),
    ('{"username": "bob", "password": "x"}'.encode("utf-32"), "application/json"),
    (b"\xef\xbb\xbf{}", "application/json"),  # a byte-order mark is not JSON text
    ('{"username": ' + "9" * 5000 + "}", "application/json"),  # past Python's int digit limit
    ('{"a": 1}\x00', "application/json"),
], ids=lambda v: repr(v)[:40])
def test_bodies_that_are_not_a_json_object_get_400_on_every_post_endpoint(api, auth_id, session, path, data,
                                                                          content_type):
    before = counts(session)
    assert_bad_request(post_raw(api, path, auth_id, data, content_type))
    assert counts(session) == before


@pytest.mark.parametrize("path", POSTS)
def test_nesting_at_the_limit_is_parsed_and_refused_for_its_content_not_a_500(api, auth_id, path):
    body = json.dumps({"username": "bob", "password": PASSWORD, "extra": json.loads(nested("arrays", MAX_DEPTH - 1))})
    response = post_raw(api, path, auth_id, body)
    assert response.status_code < 500


def test_brackets_inside_strings_do_not_count_as_nesting(api, bob):
    password = "[{" * 200 + '\\"' + "]}" * 200
    response = post_raw(api, "/authentications", "", json.dumps({"username": "bob", "password": password}))
    assert response.status_code == 401 and response.json["error"] == "invalid_credentials"


def test_a_lone_surrogate_in_a_field_is_a_bad_request(api, bob):
    response = post_raw(api, "/authentications", "", '{"username": "\\ud800", "password": "x"}')
    assert_bad_request(response)


@pytest.mark.parametrize("text, deeper", [
    ("[]", False),
    ('"' + "[" * 50 + '"', False),
    ('"\\\\"' + "[" * 21, True),  # an escaped backslash ends the string before the brackets
    ('"\\"' + "[" * 50, False),  # an escaped quote does not end it: all inside one string
    ("{" * MAX_DEPTH + "}" * MAX_DEPTH, False),
    ("[" * 10 + "]" * 10 + "[" * 15, False),  # closed brackets give depth back
])
def test_the_depth_scan_skips_strings_and_escapes(text, deeper):
    assert nesting_exceeds(text, MAX_DEPTH) is deeper


# --- headers -------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, kwargs", [
    ("post", "/api/v1/authentications", {"json": {"username": "bob", "password": PASSWORD}}),  # 201
    ("post", "/api/v1/authentications", {"json": {"username": "bob", "password": "wrong"}}),  # 401
    ("get", "/api/v1/authentications/0123456789abcdef0123456789abcdef", {}),  # 404
    ("get", "/api/v1/no-such-route", {}),  # 404 from routing
    ("delete", "/api/v1/authentications", {}),  # 405
    ("post", "/api/v1/authentications", {"data": "[" * 1000, "content_type": "application/json"}),  # 400
])
def test_every_api_answer_says_no_store(api, bob, method, path, kwargs):
    response = getattr(api.client, method)(path, headers=api._headers(), **kwargs)
    assert response.headers["Cache-Control"] == "no-store", response.status_code


def test_an_answer_without_a_valid_key_says_no_store_too(client):
    response = client.get("/api/v1/authentications/x")
    assert response.status_code == 401 and response.headers["Cache-Control"] == "no-store"


def test_development_sends_no_hsts(client, api, bob):
    assert "Strict-Transport-Security" not in client.get("/sign-in").headers
    assert "Strict-Transport-Security" not in api.post("/authentications", {"username": "bob"}).headers


@pytest.fixture
def production_app(app_config):
    root_level = logging.getLogger().level
    app = create_app({
        **app_config, "MFA_ENV": "production", "LOG_FORMAT": "text", "SECRET_KEY": "production-secret",
        "DATA_KEY": Fernet.generate_key().decode(), "PUBLIC_BASE_URL": "https://mfa.example.org",
        "TELEPHONY_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "t" * 32,
        "TWILIO_FROM_NUMBER": "+441134960000", "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
    })

    def crash():
        raise RuntimeError("boom")

    app.add_url_rule("/crash", "crash", crash)
    app.add_url_rule("/api/v1/crash", "api_crash", crash)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    yield app
    app.extensions["mfa"].engine.dispose()
    logs.remove_handler()
    logging.getLogger().setLevel(root_level)


@pytest.mark.parametrize("method, path, api", [
    ("get", "/sign-in", False),  # a page
    ("get", "/no-such-page", False),  # 404 page
    ("get", "/crash", False),  # 500 page
    ("get", "/healthz", False),
    ("get", "/metrics", False),
    ("get", "/assets/nhsuk/nhsuk-frontend.min.css", False),  # a static file (or its 404)
    ("post", "/twilio/sms/status", False),  # an unsigned webhook: 403
    ("post", "/api/v1/authentications", True),  # 401, no key
    ("get", "/api/v1/crash", True),  # 500 JSON
])
def test_production_sends_hsts_on_every_answer(production_app, method, path, api):
    # `with`: a static file's answer holds the file open until the response is closed.
    with getattr(production_app.test_client(), method)(path, base_url="https://mfa.example.org") as response:
        assert response.headers["Strict-Transport-Security"] == HSTS, response.status_code
        if api:
            assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method, path, allowed", [
    ("delete", "/api/v1/authentications", {"POST"}),
    ("put", "/api/v1/openapi.json", {"GET", "HEAD", "OPTIONS"}),
    ("patch", "/api/v1/authentications/0123456789abcdef0123456789abcdef", {"GET", "HEAD", "OPTIONS"}),
])
def test_a_wrong_method_gets_405_saying_what_is_allowed(api, method, path, allowed):
    response = getattr(api.client, method)(path, headers=api._headers())
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= allowed


@pytest.mark.parametrize("tail", [b" " * 100_000, b"x" * 100_000])
def test_a_chunked_body_over_the_limit_gets_413_not_a_parse_of_its_first_part(api, bob, session, tail):
    before = counts(session)
    body = json.dumps({"username": "bob", "password": "wrong"}).encode() + tail
    response = api.client.post("/api/v1/authentications",
                               headers={**api._headers(), "Content-Type": "application/json"},
                               environ_overrides={"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)})
    assert response.status_code == 413 and response.json["error"] == "too_large"
    assert counts(session) == before


@pytest.mark.parametrize("body", [
    {"username": "\ud800", "password": PASSWORD},
    {"username": "bob", "password": "\ud800" * 12},
    {"username": "bob\x00", "password": PASSWORD},
])
def test_text_a_database_cannot_store_gets_400(api, bob, body):
    # json.dumps (ensure_ascii) keeps lone surrogates as \ud800 escapes: the body is valid JSON.
    response = api.client.post("/api/v1/authentications", data=json.dumps(body), content_type="application/json",
                               headers=api._headers())
    assert response.status_code == 400 and response.json["error"] == "bad_request"


def test_app_password_checks_with_unstorable_text_get_400(api, bob):
    body = json.dumps({"username": "bob\x00", "app_password": "x"})
    response = api.client.post("/api/v1/app-passwords/verify", data=body, content_type="application/json",
                               headers=api._headers())
    assert response.status_code == 400


@pytest.mark.parametrize("auth_id", ["a%00b", "A" * 32, "0" * 31])
def test_malformed_authentication_ids_are_unknown(api, auth_id):
    assert api.get(f"/authentications/{auth_id}").status_code == 404
    assert api.post(f"/authentications/{auth_id}/checks", {"code": "123456"}).status_code == 404
