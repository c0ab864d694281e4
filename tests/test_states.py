"""Statuses and reasons: one StrEnum each (models/states.py), worded for people and documented."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from mfa import authentications
from mfa.authentications import finish
from models import Authentication
from models.states import (
    DENIALS, FINAL_STATUSES, OPEN_STATUSES, RETRYABLE_DENIALS, AuthStatus, ChallengeStatus, Reason,
)
from tests.conftest import PASSWORD
from web import reasons

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
# The words of the API contract (docs/api.md): never renamed or removed.
CONTRACT_STATUSES = {"approved", "mfa_required", "registration_required", "pending", "denied", "fraud_reported",
                     "expired", "locked"}
ENDINGS = [reason for reason in DENIALS if reason not in RETRYABLE_DENIALS]


def documented_reasons() -> set[str]:
    """The first column of the table under `reason` in docs/api.md."""
    lines = API_DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index("| reason | with status | meaning |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip().strip("`"))
    return set(rows)


def test_the_statuses_are_the_contracts_words():
    assert {status.value for status in AuthStatus} == CONTRACT_STATUSES
    assert set(OPEN_STATUSES) | set(FINAL_STATUSES) == set(AuthStatus)
    assert not set(OPEN_STATUSES) & set(FINAL_STATUSES)


@pytest.mark.parametrize("reason", RETRYABLE_DENIALS)
def test_every_denial_of_one_challenge_has_a_sentence_on_the_page(reason):
    assert reasons.sentence(reason)


@pytest.mark.parametrize("reason", ENDINGS)
def test_every_ending_of_a_sign_in_has_a_sentence_on_the_page(reason):
    assert reasons.ending(AuthStatus.DENIED, reason) == reasons.sentence(reason)


@pytest.mark.parametrize("status", [s for s in FINAL_STATUSES if s not in (AuthStatus.APPROVED, AuthStatus.DENIED)])
def test_every_final_status_but_approved_and_denied_has_a_sentence_on_the_page(status):
    assert reasons.STATUS_SENTENCES.get(status)


@pytest.mark.parametrize("reason", DENIALS)
def test_every_denial_and_ending_has_a_line_in_the_api_docs(reason):
    assert reason in documented_reasons()


def test_the_api_docs_list_no_reason_the_server_does_not_give():
    assert documented_reasons() <= {reason.value for reason in Reason}


def test_states_are_stored_and_matched_as_their_plain_strings(run, runtime, bob):
    auth_id = run(lambda db, svc: authentications.start(db, svc, "bob", PASSWORD, "192.0.2.1").id)

    def deny(db, svc):
        auth = db.scalars(select(Authentication).where(Authentication.id == auth_id,
                                                       Authentication.status.in_(OPEN_STATUSES))).one()
        assert auth.status == AuthStatus.REGISTRATION_REQUIRED
        assert finish(db, svc, auth, AuthStatus.DENIED, Reason.TOO_MANY_ATTEMPTS)

    run(deny)
    with runtime.sessions() as db:
        stored = db.execute(text("SELECT status, reason FROM authentications WHERE id = :id"),
                            {"id": auth_id}).one()
        assert tuple(stored) == ("denied", "too_many_attempts")
        assert type(stored[0]) is str
        found = db.scalars(select(Authentication).where(Authentication.status == AuthStatus.DENIED,
                                                        Authentication.reason == Reason.TOO_MANY_ATTEMPTS)).one()
        assert found.id == auth_id and not found.can_retry()


def test_a_challenge_status_compares_equal_to_its_stored_word():
    assert ChallengeStatus.PENDING == "pending" and f"{ChallengeStatus.REPLACED}" == "replaced"
