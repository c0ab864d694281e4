"""Metrics an operator alerts on (docs/monitoring.md): every series declared before any event,
the security signals each in a series of its own, Twilio's silence, attempts apart from requests,
and the sample alert rules and dashboard (deploy/) naming only series the app exposes."""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from ivr.webhook_urls import WebhookUrls
from mfa import app_passwords, cancellation, facts
from mfa.errors import InvalidCredentials
from models import Challenge, User
from tests.conftest import PASSWORD, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_DATA_KEY
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import method_id, register_mobile, sign_webhook, start_sign_in, state

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"

# The series docs/monitoring.md lists (as exposed: counters with _total), each declared at start-up.
DECLARED = [
    "mfa_sign_ins_total", "mfa_challenges_total", "mfa_audit_events_total", "mfa_sign_in_refusals_total",
    "mfa_lockouts_total", "mfa_fraud_blocks_total", "mfa_number_mismatches_total", "mfa_push_denials_total",
    "mfa_challenges_unheard_total", "mfa_webhook_signature_failures_total", "mfa_twilio_requests_total",
    "mfa_twilio_attempts_total", "mfa_twilio_errors_total", "mfa_twilio_account_errors_total",
    "mfa_webhook_duration_seconds", "mfa_webhook_responses_total", "mfa_telephony_budget_remaining",
    "mfa_database_up", "mfa_challenges_awaiting_twilio",
]
# Label sets that must read 0 in the first scrape, before anything has happened.
ZERO_AT_START = [
    'mfa_sign_ins_total{method="totp",outcome="approved"}', 'mfa_sign_ins_total{method="password",outcome="failed"}',
    'mfa_lockouts_total{kind="sign_in"}', 'mfa_lockouts_total{kind="app_password"}',
    'mfa_sign_in_refusals_total{reason="locked"}', 'mfa_sign_in_refusals_total{reason="fraud_block"}',
    "mfa_fraud_blocks_total", "mfa_push_denials_total", "mfa_webhook_signature_failures_total",
    'mfa_number_mismatches_total{method="voice"}', 'mfa_number_mismatches_total{method="push"}',
    'mfa_challenges_unheard_total{method="voice"}', 'mfa_challenges_unheard_total{method="sms"}',
    'mfa_twilio_requests_total{kind="call",outcome="error"}', 'mfa_twilio_attempts_total{kind="sms",outcome="ok"}',
    'mfa_webhook_duration_seconds_count{path="/twilio/sms/status"}',
]
# Series Prometheus makes itself: the rules and the dashboard may name these too.
PROMETHEUS_OWN = {"up"}


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def app_config(app_config):
    """Lockouts within a test: no per-person rate limit first, three wrong app passwords lock.
    Calls are approved by keying the number on the sign-in screen."""
    return {**app_config, "RATE_LIMIT_SIGN_INS_PER_PERSON": "1000", "APP_PASSWORD_LOCKOUT_THRESHOLD": "3",
            "CALL_APPROVAL": "number"}


# --- declared at start -------------------------------------------------------------------


FIRST_SCRAPE = """
import sys
from app import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "DATA_KEY": sys.argv[2], "SECRET_KEY": "first-scrape",
                  "INSTANCE_PATH": sys.argv[3], "MFA_ENV": "development", "TELEPHONY_PROVIDER": "simulator",
                  "PUBLIC_BASE_URL": "http://localhost"})
print(app.test_client().get("/metrics").text)
"""


@pytest.fixture
def first_scrape(database_url, tmp_path) -> str:
    """/metrics of a process that has done nothing else: this suite's own process has counted plenty."""
    done = subprocess.run([sys.executable, "-c", FIRST_SCRAPE, database_url, TEST_DATA_KEY, str(tmp_path / "i")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_series_has_help_and_type_in_the_first_scrape(first_scrape):
    for name in DECLARED:
        family = name.removesuffix("_total")
        assert re.search(rf"^# HELP {family}(_total)? \S", first_scrape, re.M), name
        assert re.search(rf"^# TYPE {family}(_total)? (counter|gauge|histogram)$", first_scrape, re.M), name


def test_the_known_label_sets_read_zero_before_any_event(first_scrape):
    lines = first_scrape.splitlines()
    for series in ZERO_AT_START:
        assert f"{series} 0.0" in lines, series


# --- security signals --------------------------------------------------------------------


def test_a_sign_in_lockout_and_the_refusals_after_it_are_counted_as_locked(api, bob):
    locked = sample("mfa_lockouts_total", kind="sign_in")
    refused = sample("mfa_sign_in_refusals_total", reason="locked")
    blocked = sample("mfa_sign_in_refusals_total", reason="fraud_block")
    for _ in range(10):
        api.post("/authentications", {"username": "bob", "password": "wrong password!"})
    assert api.post("/authentications", {"username": "bob", "password": PASSWORD}).status_code == 423
    assert sample("mfa_lockouts_total", kind="sign_in") == locked + 1
    assert sample("mfa_sign_in_refusals_total", reason="locked") == refused + 1
    assert sample("mfa_sign_in_refusals_total", reason="fraud_block") == blocked


def test_an_app_password_lock_is_counted_as_its_own_kind(run, bob):
    run(lambda db, svc: app_passwords.create(db, svc, bob, "Outlook 2013"))
    before = sample("mfa_lockouts_total", kind="app_password")
    signed_in = sample("mfa_lockouts_total", kind="sign_in")
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            run(lambda db, svc: app_passwords.verify(db, svc, "bob", "aaaa bbbb cccc dddd", "192.0.2.1"))
    assert sample("mfa_lockouts_total", kind="app_password") == before + 1
    assert sample("mfa_lockouts_total", kind="sign_in") == signed_in


def block_after_fraud_report(run, user) -> None:
    def block(db, svc):
        db.get(User, user.id).fraud_blocked_at = svc.clock.now()

    run(block)


def test_a_fraud_blocked_persons_sign_in_counts_as_a_fraud_block_not_a_lockout(api, run, alice):
    block_after_fraud_report(run, alice)
    blocks, as_block = sample("mfa_fraud_blocks_total"), sample("mfa_sign_in_refusals_total", reason="fraud_block")
    as_locked = sample("mfa_sign_in_refusals_total", reason="locked")
    assert api.post("/authentications", {"username": "alice", "password": PASSWORD}).status_code == 423
    assert sample("mfa_fraud_blocks_total") == blocks + 1
    assert sample("mfa_sign_in_refusals_total", reason="fraud_block") == as_block + 1
    assert sample("mfa_sign_in_refusals_total", reason="locked") == as_locked


def test_a_fraud_blocked_persons_app_password_counts_as_a_fraud_block(run, alice):
    _, typed = run(lambda db, svc: app_passwords.create(db, svc, alice, "Thunderbird"))
    block_after_fraud_report(run, alice)
    blocks = sample("mfa_fraud_blocks_total")
    with pytest.raises(InvalidCredentials):
        run(lambda db, svc: app_passwords.verify(db, svc, "alice", "wxyz wxyz wxyz wxyz", "192.0.2.1"))
    assert sample("mfa_fraud_blocks_total") == blocks + 1


def test_forged_and_other_accounts_webhooks_count_as_signature_failures(client):
    url = "http://localhost/twilio/sms/status"
    ours = {"AccountSid": TEST_ACCOUNT_SID, "MessageSid": "SM" + "2" * 32, "MessageStatus": "delivered"}
    theirs = {**ours, "AccountSid": "AC" + "f" * 32}
    before = sample("mfa_webhook_signature_failures_total")
    assert client.post(url, data=ours, headers=sign_webhook(TEST_AUTH_TOKEN, url, ours)).status_code == 204
    assert sample("mfa_webhook_signature_failures_total") == before
    assert client.post(url, data=ours, headers={"X-Twilio-Signature": "forged"}).status_code == 403
    assert client.post(url, data=ours).status_code == 403
    assert client.post(url, data=theirs, headers=sign_webhook(TEST_AUTH_TOKEN, url, theirs)).status_code == 403
    assert sample("mfa_webhook_signature_failures_total") == before + 3


# --- push: denials and wrong numbers -----------------------------------------------------


def test_a_push_denial_and_a_wrong_number_on_the_phone_app_have_their_own_series(live, bob, clock, tmp_path):
    from tests.test_push_api import refusal, registered_phone, waiting

    device, push_method = registered_phone(live, clock, tmp_path)
    denials, mismatches = sample("mfa_push_denials_total"), sample("mfa_number_mismatches_total", method="push")
    _auth, request_id, _number = waiting(live, device, push_method)
    assert device.deny(request_id) == {"status": "denied"}
    assert sample("mfa_push_denials_total") == denials + 1
    assert sample("mfa_number_mismatches_total", method="push") == mismatches

    clock.advance(1)
    _auth, request_id, number = waiting(live, device, push_method)
    assert refusal(lambda: device.approve(request_id, "99" if number != "99" else "11")) == (422, "number_mismatch")
    assert sample("mfa_number_mismatches_total", method="push") == mismatches + 1
    assert sample("mfa_push_denials_total") == denials + 1  # a wrong number is no Deny


def test_each_wrong_number_keyed_on_a_call_is_counted_as_voice(live, phones, alice):
    from tests.test_number_match_calls import call_with_number, wrong

    before = sample("mfa_number_mismatches_total", method="voice")
    auth, sid, number = call_with_number(live, phones)
    for _ in range(2):  # the first is asked again, the second denies the sign-in
        phones.press(sid, wrong(number))
        phones.wait_idle()
    assert state(live, auth)["reason"] == "number_mismatch"
    assert sample("mfa_number_mismatches_total", method="voice") == before + 2


# --- challenges Twilio never reported on -------------------------------------------------


@pytest.fixture
def fake(runtime) -> FakeTelephony:
    provider = FakeTelephony()
    use_fake(runtime, provider)
    return provider


def challenge_by(api, auth: dict, type_: str) -> None:
    response = api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id(auth, type_)})
    assert response.status_code == 201, response.json


def sent_challenge(session, auth: dict) -> Challenge:
    return session.scalars(select(Challenge).where(Challenge.authentication_id == auth["id"])
                           .order_by(Challenge.created_at.desc())).first()


def post_signed(client, url: str, params: dict) -> int:
    params = {"AccountSid": TEST_ACCOUNT_SID, **params}
    return client.post(url, data=params, headers=sign_webhook(TEST_AUTH_TOKEN, url, params)).status_code


@pytest.mark.parametrize("type_, what", [("voice", "call"), ("sms", "text")])
def test_a_call_or_text_never_reported_on_is_counted_and_logged_when_its_sign_in_runs_out(
        api, fake, alice, clock, caplog, type_, what):
    auth = start_sign_in(api, "alice", expect="mfa_required")
    challenge_by(api, auth, type_)
    before = sample("mfa_challenges_unheard_total", method=type_)
    clock.advance(minutes=10)
    with caplog.at_level(logging.WARNING, logger="mfa.telephony"):
        assert api.get(f"/authentications/{auth['id']}").json["status"] == "expired"
    assert sample("mfa_challenges_unheard_total", method=type_) == before + 1
    [line] = [r.getMessage() for r in caplog.records if "no word from Twilio" in r.getMessage()]
    assert re.fullmatch(rf"no word from Twilio about {what} (CA|SM)[0-9a-f]{{32}} for challenge [0-9a-f]+: "
                        r"check that Twilio can reach PUBLIC_BASE_URL \(TLS, firewall\)", line), line


def test_a_call_twilio_reported_ringing_is_not_counted_as_unheard(api, client, fake, alice, clock, session):
    auth = start_sign_in(api, "alice", expect="mfa_required")
    challenge_by(api, auth, "voice")
    call = sent_challenge(session, auth)
    url = WebhookUrls("http://localhost").voice_status(call.id)
    assert post_signed(client, url, {"CallSid": call.provider_sid, "CallStatus": "ringing"}) in (200, 204)
    before = sample("mfa_challenges_unheard_total", method="voice")
    clock.advance(minutes=10)
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "expired"
    assert sample("mfa_challenges_unheard_total", method="voice") == before


def test_a_text_twilio_reported_sent_is_not_counted_as_unheard(api, client, fake, alice, clock, session):
    auth = start_sign_in(api, "alice", expect="mfa_required")
    challenge_by(api, auth, "sms")
    text = sent_challenge(session, auth)
    assert post_signed(client, "http://localhost/twilio/sms/status",
                       {"MessageSid": text.provider_sid, "MessageStatus": "sent"}) == 204
    before = sample("mfa_challenges_unheard_total", method="sms")
    clock.advance(minutes=10)
    assert api.get(f"/authentications/{auth['id']}").json["status"] == "expired"
    assert sample("mfa_challenges_unheard_total", method="sms") == before


def awaiting(client, method: str) -> float:
    scrape = client.get("/metrics").get_data(as_text=True)
    found = re.search(rf'^mfa_challenges_awaiting_twilio{{method="{method}"}} (\S+)$', scrape, re.M)
    assert found is not None, scrape
    return float(found[1])


def test_a_cancelled_sign_ins_silent_call_shows_in_the_awaiting_gauge_until_twilio_reports(
        api, client, run, fake, alice, clock, session):
    """The issue's case: Twilio cannot reach us, and nobody ever reads the sign-in again (cancelled:
    its call stays pending for fraud reports), so nothing ends the challenge; the gauge still sees it."""
    auth = start_sign_in(api, "alice", expect="mfa_required")
    challenge_by(api, auth, "voice")
    call = sent_challenge(session, auth)
    assert awaiting(client, "voice") == 0  # just placed: Twilio's first report may be on its way
    assert run(lambda db, svc: cancellation.cancel(db, svc, auth["id"])) == []  # the call is left ringing
    clock.advance(31)
    assert (awaiting(client, "voice"), awaiting(client, "sms")) == (1, 0)
    url = WebhookUrls("http://localhost").voice_status(call.id)
    assert post_signed(client, url, {"CallSid": call.provider_sid, "CallStatus": "ringing"}) in (200, 204)
    assert awaiting(client, "voice") == 0


def test_a_silent_text_leaves_the_awaiting_gauge_after_an_hour(api, client, fake, alice, clock):
    auth = start_sign_in(api, "alice", expect="mfa_required")
    challenge_by(api, auth, "sms")
    clock.advance(31)
    assert awaiting(client, "sms") == 1
    clock.advance(minutes=60)
    assert awaiting(client, "sms") == 0  # an old silent text does not hold the alert up for good


def test_a_call_replaced_by_another_after_a_silent_minute_is_counted_as_unheard(api, fake, alice, clock):
    auth = start_sign_in(api, "alice", expect="mfa_required")
    challenge_by(api, auth, "voice")
    before = sample("mfa_challenges_unheard_total", method="voice")
    clock.advance(60)
    challenge_by(api, auth, "voice")
    assert sample("mfa_challenges_unheard_total", method="voice") == before + 1


@pytest.mark.parametrize("seconds, unheard", [(5, 0), (31, 1)])
def test_a_text_cancelled_seconds_after_it_was_sent_is_not_yet_unheard(api, run, fake, alice, clock, seconds,
                                                                        unheard):
    from mfa import cancellation

    auth = start_sign_in(api, "alice", expect="mfa_required")
    challenge_by(api, auth, "sms")
    before = sample("mfa_challenges_unheard_total", method="sms")
    clock.advance(seconds)  # within 30 s Twilio's first report may well be on its way
    run(lambda db, svc: cancellation.cancel(db, svc, auth["id"]))
    assert sample("mfa_challenges_unheard_total", method="sms") == before + unheard


def test_the_unheard_fact_is_no_audit_event():
    from ops import counters

    audited = sample("mfa_audit_events_total", event=facts.CHALLENGE_UNHEARD, outcome="unheard")
    counters.count(facts.Outcome(facts.CHALLENGE_UNHEARD, "unheard", "voice", None))
    assert sample("mfa_audit_events_total", event=facts.CHALLENGE_UNHEARD, outcome="unheard") == audited == 0


# --- Twilio: requests apart from attempts ------------------------------------------------


def twilio(kind: str) -> dict[str, float]:
    return {f"{series}_{outcome}": sample(f"mfa_twilio_{series}_total", kind=kind, outcome=outcome)
            for series in ("requests", "attempts") for outcome in ("ok", "error")}


def test_a_text_sent_after_two_retries_is_one_request_of_three_attempts(live, phones, bob):
    live.app.extensions["mfa"].services.telephony.sleep = lambda _s: None
    before = twilio("sms")
    phones.fail_next_requests(2, status=429)
    assert register_mobile(live, phones)[1].status_code == 201
    after = twilio("sms")
    assert {key: after[key] - before[key] for key in after} == {
        "requests_ok": 1, "requests_error": 0, "attempts_ok": 1, "attempts_error": 2}


def test_a_text_twilio_refuses_is_one_failed_request_and_one_failed_attempt(live, phones, bob):
    before = twilio("sms")
    phones.set_rest_error("+447400123456", 21211)
    assert register_mobile(live, phones)[1].status_code == 422
    after = twilio("sms")
    assert {key: after[key] - before[key] for key in after} == {
        "requests_ok": 0, "requests_error": 1, "attempts_ok": 0, "attempts_error": 1}


# --- alert rules and dashboard -----------------------------------------------------------


def exposed_names(scrape: str) -> set[str]:
    """Every sample name /metrics can show: each family's TYPE line, with a histogram's parts."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", scrape, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        if kind == "counter":
            names.add(name if name.endswith("_total") else f"{name}_total")
    return names


PROMQL_WORDS = {
    "sum", "rate", "increase", "irate", "by", "without", "on", "ignoring", "group_left", "group_right",
    "histogram_quantile", "max", "min", "avg", "count", "and", "or", "unless", "bool", "offset", "absent",
    "clamp_min", "clamp_max", "topk", "le", "vector", "time", "delta", "deriv", "changes", "resets", "sgn",
    "max_over_time", "min_over_time", "avg_over_time", "label_replace", "abs", "round", "scalar",
}


def series_named(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers outside {…} label matchers, [ranges], quotes,
    by (…) lists and Grafana's $variables, that are not PromQL's own words."""
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\$\w+', " ", expr)
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    return {word for word in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare)
            if word not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdw]?", word)}


def test_series_named_reads_metric_names_out_of_promql():
    expr = 'sum by (kind) (rate(mfa_twilio_attempts_total{outcome="error"}[10m])) / up{job=~"$job"} > 0.2'
    assert series_named(expr) == {"mfa_twilio_attempts_total", "up"}


@pytest.fixture
def exposed(client) -> set[str]:
    return exposed_names(client.get("/metrics").text) | PROMETHEUS_OWN


def alert_rules() -> list[dict]:
    import yaml

    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_alert_rules_pass_promtool_when_it_is_installed():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus): the rules are still parsed and "
                    "checked by the other tests here")
    done = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_rule_is_complete_and_names_only_exposed_series(exposed):
    rules = alert_rules()
    wanted = {"MfaInstanceDown", "MfaNotReady", "MfaTwilioAccountError", "MfaTwilioErrorRatioHigh",
              "MfaChallengesUnheard", "MfaWebhookSignatureFailures", "MfaFraudReported", "MfaLockoutSpike",
              "MfaTelephonyBudgetLow", "MfaWebhookLatencyHigh"}
    assert {rule["alert"] for rule in rules} >= wanted
    for rule in rules:
        assert set(rule) >= {"alert", "expr", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert series_named(str(rule["expr"])) <= exposed, (rule["alert"], series_named(str(rule["expr"])) - exposed)


def dashboard_exprs(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_parses_and_its_panels_name_only_exposed_series(exposed):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    [datasource] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert datasource["query"] == "prometheus"
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 10
    for expr in exprs:
        assert series_named(expr) <= exposed, (expr, series_named(expr) - exposed)
    shown = set().union(*(series_named(e) for e in exprs))
    for name in ("mfa_challenges_unheard_total", "mfa_twilio_attempts_total", "mfa_lockouts_total",
                 "mfa_fraud_blocks_total", "mfa_webhook_duration_seconds_bucket", "mfa_telephony_budget_remaining"):
        assert name in shown, name


def test_docs_monitoring_lists_every_series_the_server_exposes(client):
    documented = set(re.findall(r"^\| `([a-z_]+)`", (ROOT / "docs" / "monitoring.md").read_text(), re.M))
    families = re.findall(r"^# TYPE (mfa_\S+) (\S+)$", client.get("/metrics").text, re.M)
    # prometheus_client's *_created gauges (when each series began) are no series of ours.
    exposed = {name if kind != "counter" or name.endswith("_total") else f"{name}_total"
               for name, kind in families if not name.endswith("_created")}
    assert len(exposed) >= 18 and exposed <= documented, exposed - documented

