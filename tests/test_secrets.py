"""Secrets stay out of the audit trail and the logs; app-password checks reveal no usernames."""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import event, select

from mfa import app_passwords
from models import AuditEvent
from ops.logs import JsonFormatter

TYPED_PASSWORD = "Hunter2-Correct-Horse"  # what someone typed into the username box


def audit_rows(session, event_name):
    return session.scalars(select(AuditEvent).where(AuditEvent.event == event_name)).all()


def test_a_password_typed_as_the_username_is_never_stored_in_the_audit_trail_or_the_log(api, session, caplog):
    caplog.set_level(logging.INFO)
    response = api.post("/authentications", {"username": TYPED_PASSWORD, "password": "whatever"})
    assert response.status_code == 401
    (row,) = audit_rows(session, "sign_in")
    assert row.username.startswith("unknown user ") and row.reason == "unknown_user"
    stored = json.dumps([row.username, row.detail, row.reason, row.method])
    assert TYPED_PASSWORD.lower() not in stored.lower()
    assert TYPED_PASSWORD.lower() not in caplog.text.lower()


def test_an_unknown_name_on_an_app_password_check_is_kept_only_as_a_keyed_hash(api, session, runtime, caplog):
    caplog.set_level(logging.INFO)
    for typed in (TYPED_PASSWORD, f"  {TYPED_PASSWORD.upper()} ", "someone-else"):
        response = api.post("/app-passwords/verify", {"username": typed, "app_password": "abcd efgh ijkl mnop"})
        assert response.status_code == 401
    first, same_name, other = (r.username for r in audit_rows(session, "app_password_check"))
    assert TYPED_PASSWORD.lower() not in caplog.text.lower()
    assert TYPED_PASSWORD.lower() not in first.lower()
    # One name typed twice groups together; the hash needs DATA_KEY, so a stolen table alone
    # cannot be tried against a dictionary.
    assert first == same_name != other
    vault = runtime.services.vault
    assert first == "unknown user " + vault.keyed_hash("audit-username:" + TYPED_PASSWORD.lower())[:32]


def test_a_known_username_is_still_recorded_by_name(api, session, bob):
    api.post("/app-passwords/verify", {"username": "bob", "app_password": "abcd efgh ijkl mnop"})
    (row,) = audit_rows(session, "app_password_check")
    assert (row.username, row.outcome, row.reason) == ("bob", "failed", "no_match")


def test_a_raw_name_handed_to_the_audit_trail_is_replaced_rather_than_stored(run, session):
    from mfa import audit

    run(lambda db, svc: audit.record(db, svc.clock, "sign_in", "failed", username=TYPED_PASSWORD))
    (row,) = audit_rows(session, "sign_in")
    assert row.username == "unknown user"


def test_the_json_access_log_masks_phone_numbers_in_the_path_as_in_the_message(client, caplog):
    caplog.set_level(logging.INFO, logger="mfa.access")
    client.get("/api/v1/authentications/+447700900123")
    (record,) = [r for r in caplog.records if r.name == "mfa.access"]
    line = json.loads(JsonFormatter().format(record))
    assert "447700900123" not in json.dumps(line)
    assert line["path"] == "/api/v1/authentications/+••••••••••23"


class StatementLog:
    """Every SQL statement the app sends, in order (parameters left out)."""

    def __init__(self, engine):
        self.engine, self.statements = engine, []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement, _params, _context, _many):
        self.statements.append(" ".join(statement.split()))

    def during(self, action):
        self.statements = []
        action()
        return self.statements

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.fixture
def statements(runtime):
    log = StatementLog(runtime.engine)
    yield log
    log.close()


@pytest.mark.parametrize("app_password", ["abcd efgh ijkl mnop", "too short"])
def test_an_app_password_check_runs_the_same_statements_for_unknown_and_known_usernames(
        api, run, bob, statements, app_password):
    run(lambda db, svc: app_passwords.create(db, svc, bob, "Outlook"))
    api.post("/app-passwords/verify", {"username": "warm-up", "app_password": app_password})  # caches the API key

    def check(username):
        def post():
            answer = api.post("/app-passwords/verify", {"username": username, "app_password": app_password})
            assert answer.status_code == 401
        return post

    known = statements.during(check("bob"))
    unknown = statements.during(check("nobody-here"))
    assert len(known) == len(unknown) >= 3
    assert known == unknown
