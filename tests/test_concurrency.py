"""Two workers cannot both win: one valid code, checked 20 times at once, approves once."""
from __future__ import annotations

import os
import threading

import pytest

from mfa import authentications, checks
from mfa.errors import MfaError
from mfa.unit_of_work import use_case
from tests.helpers import enrol_app, pyotp_code, start_sign_in

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"),
    reason="row-level concurrency needs PostgreSQL: set TEST_DATABASE_URL (.ci/run does)",
)


def test_twenty_simultaneous_checks_of_one_code_approve_exactly_once(api, bob, clock, runtime):
    secret = enrol_app(api, clock)
    auth = start_sign_in(api)
    code = pyotp_code(secret, clock.now())
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def check():
        with runtime.sessions() as session:
            start.wait()
            try:
                with use_case(session):
                    result = checks.check_code(session, runtime.services, auth["id"], code, "127.0.0.1")
                outcome = result.status
            except MfaError as refusal:
                outcome = refusal.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=check) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("approved") == 1, outcomes
    assert len(outcomes) == 20
    assert all(o in ("not_pending", "invalid_code") for o in outcomes if o != "approved")
    with runtime.sessions() as session:
        final = authentications.get(session, runtime.services, auth["id"])
        assert final.status == "approved"
