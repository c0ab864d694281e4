"""The OpenAPI description is served, and schemathesis finds nothing against a live server.

Every operation is fuzzed with data that fits the description and with data that does not;
then a state machine follows the description's links (an authentication's id from
`POST /authentications` into GET, challenges, checks and registrations). It fails on any 5xx
and on any answer that does not match the description (status code, content type, headers,
schema). The example budget is fixed and generation derandomised, so a run is repeatable and
stays well under a minute.
"""
from __future__ import annotations

import collections
import itertools
import re
import traceback
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mfa import accounts, methods
from mfa.limits import CATALOGUE
from tests import personas
from tests.conftest import PASSWORD
from tests.helpers import start_sign_in

ID = re.compile("[0-9a-f]{32}")
EXAMPLES_PER_OPERATION = 40  # per generation mode
STATEFUL_SCENARIOS = 30
SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
)
# Schema-valid codes, numbers and passwords are refused for what they say (400 invalid_code,
# 422 invalid_number, 401): the API is right to do so, so "valid data is accepted" cannot hold.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture
def app_config(app_config):
    # Fuzzing sends hundreds of requests a minute with one key, far over the rate limits (docs/limits.md),
    # which are not what is tested here (tests/test_rate_limits.py is); every 429 stays described.
    unlimited = {limit.setting: "1000000" for limit in CATALOGUE if limit.setting.startswith("RATE_LIMIT_")}
    return {**app_config, **unlimited}


@pytest.fixture
def people(live, run, alice, bob, dave):
    """alice has a mobile (texts and calls); bob must register; dave needs no second factor;
    erin has an authenticator app."""
    personas.person(run, "erin", role="admin", region="england")
    run(add_app("erin"))
    return ["alice", "bob", "dave", "erin"]


def add_app(username):
    def add(db, svc):
        user = accounts.find_user(db, username)
        assert user is not None
        method, _uri = methods.enrol_totp(db, svc, user, None)
        method.verified_at, method.is_default = svc.clock.now(), True
    return add


def unlocked_start(live, run, username):
    # Random wrong codes lock people out (that has its own tests): unlock, so every case gets far.
    run(lambda db, svc: accounts.unlock(db, svc, username))
    return start_sign_in(live.api, username)


@pytest.fixture
def schema(live, people):
    auth = dict(live.api.http.headers)
    loaded = schemathesis.openapi.from_url(live.url + "/api/v1/openapi.json", headers=auth, timeout=10)
    loaded.config.update(base_url=live.url + "/api/v1", headers={"Authorization": auth["Authorization"]},
                         request_timeout=15)
    return loaded


def test_the_description_is_served_to_a_valid_key_only(live):
    served = live.api.get("/openapi.json")
    assert served.status_code == 200 and served.headers["Content-Type"] == "application/json"
    assert served.json()["openapi"].startswith("3.1")
    assert served.headers["Cache-Control"] == "no-store"
    assert requests.get(live.url + "/api/v1/openapi.json", timeout=10).status_code == 401


def test_the_description_covers_every_api_route(live):
    served = live.api.get("/openapi.json").json()
    described = {(method.upper(), "/api/v1" + path.replace("{auth_id}", "<auth_id>"))
                 for path, item in served["paths"].items() for method in item}
    routes = {(method, rule.rule) for rule in live.app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == described


def test_schemathesis_finds_nothing_in_any_operation(schema, real):
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode == GenerationMode.NEGATIVE and not (operation.path_parameters or operation.query or operation.body):
                # Only the key header could be wrong, and every case carries the run's own key: nothing
                # to make invalid, so hypothesis may find no case at all (a missing key has its own test).
                continue
            try:
                fuzz_one(operation, mode, real)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  (one report for all operations)
                failures.append(f"{operation.label} [{mode}]:\n" + "".join(traceback.format_exception(exc)))
    assert not failures, "\n\n".join(failures)


def fuzz_one(operation, mode, real):
    @given(case=operation.as_strategy(generation_mode=mode))
    @SETTINGS
    def fuzz(case):
        real(case, mode)
        case.call_and_validate(excluded_checks=EXCLUDED_CHECKS)

    fuzz()


# Whose sign-in each operation gets, in turn (a fixed order: the run stays repeatable).
CAST = {
    "/registrations": ["bob"],  # the one who must register
    "/challenges": ["alice", "alice", "erin", "dave"],  # texts and calls; an app; no MFA
    "/checks": ["alice", "erin", "bob", "dave"],
    "": ["alice", "bob", "dave", "erin"],
}


@pytest.fixture
def real(live, run, people):
    """Point a generated case at a fresh sign-in of a real person, so it reaches real paths.

    A well-formed generated id becomes a new sign-in's; a malformed one is kept (it must get
    404). In data that fits the description, every other challenge names one of the person's
    real methods and every other phone registration a real UK mobile; alice's checks have a
    texted code waiting, so random codes meet a real challenge.
    """
    turn = itertools.count()

    def prepare(case, mode):
        auth_id = case.path_parameters.get("auth_id")
        if not (isinstance(auth_id, str) and ID.fullmatch(auth_id)):
            return
        n = next(turn)
        cast = next(names for suffix, names in CAST.items() if case.path.endswith(suffix))
        auth = unlocked_start(live, run, cast[n % len(cast)])
        case.path_parameters["auth_id"] = auth["id"]
        method_ids = [m["id"] for m in auth["methods"]]
        # Only data that fits the description is made realistic: a negative case must stay invalid.
        change = mode == GenerationMode.POSITIVE and isinstance(case.body, dict) and n % 2
        if change and case.path.endswith("/challenges") and method_ids:
            case.body["method_id"] = method_ids[(n // 2) % len(method_ids)]
        if change and case.path.endswith("/registrations") and case.body.get("type") == "phone":
            case.body["number"] = f"07700 900{n % 1000:03d}"
        if case.path.endswith("/checks") and auth["methods"] and auth["methods"][0]["type"] == "sms":
            live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_ids[0]})

    return prepare


def test_schemathesis_finds_nothing_following_the_links(schema, run, people):
    base: Any = schema.as_state_machine()  # a class made at run time

    class SignIns(base):
        turn = itertools.count()

        def before_call(self, case):
            # Real people, so the links lead somewhere: a random name only ever gets 401.
            if case.operation.label.endswith("POST /authentications") and isinstance(case.body, dict):
                username = people[next(self.turn) % len(people)]
                run(lambda db, svc: accounts.unlock(db, svc, username))
                case.body = {"username": username, "password": PASSWORD}

        def after_call(self, response, case):
            reached[case.operation.label].add(response.status_code)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, excluded_checks=EXCLUDED_CHECKS, transport_kwargs=kwargs)

    reached: collections.defaultdict[str, set[int]] = collections.defaultdict(set)
    SignIns.run(settings=settings(SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=8))
    # The links were followed to real sign-ins, not only to 404s.
    assert 200 in reached["GET /authentications/{auth_id}"], reached
    assert 201 in reached["POST /authentications/{auth_id}/challenges"], reached
    assert 201 in reached["POST /authentications/{auth_id}/registrations"], reached
    assert reached["POST /authentications/{auth_id}/checks"] - {404}, reached
