"""Toll-fraud and spend controls: where calls and texts may go, and how many the service places.

A fake provider (tests/fake_telephony.py) stands in for Twilio: "nothing sent" is asserted on
what it was asked to send. Limits are lowered per test by replacing the app's Services, as a
setting would (mfa/limits.py); the race runs on PostgreSQL only (tests/test_races.py).
"""
from __future__ import annotations

import dataclasses
import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from mfa import accounts, calls, challenges, limits
from mfa.limits import Limits
from mfa.spend import BUDGET_SPENT
from mfa.unit_of_work import Transactions
from models import AuditEvent, Method, SendRecord
from tests.conftest import PASSWORD
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone, pyotp_code, start_sign_in
from tests.test_races import WAYS, all_at_once, count, postgres_only

UK_MOBILE = "+447400123456"
JERSEY_MOBILE = "+447797712345"
ISLE_OF_MAN_MOBILE = "+447624123456"


@pytest.fixture
def fake(runtime):
    provider = FakeTelephony()
    use_fake(runtime, provider)
    return provider


def set_limits(runtime, **numbers: int) -> None:
    """As the limits' settings would: {limit name: number}."""
    runtime.services = dataclasses.replace(runtime.services, limits=Limits(numbers))


def new_person(run, username: str, number: str | None = None) -> dict[str, str]:
    """An administrator in England; with `number`, a verified mobile: {"sms": id, "voice": id}."""
    user = run(lambda db, svc: accounts.create_user(db, svc, username, PASSWORD, role="admin", region="england"))
    if number is None:
        return {}
    sms_id, voice_id = add_phone(run, user, number, types=("sms", "voice"))
    return {"sms": sms_id, "voice": voice_id}


def challenge(api, username: str, method_id: str):
    auth = start_sign_in(api, username)
    return api.post(f"/authentications/{auth['id']}/challenges", {"method_id": method_id})


def register(api, username: str, number: str, delivery: str = "sms"):
    auth = start_sign_in(api, username, expect="registration_required")
    return api.post(f"/authentications/{auth['id']}/registrations",
                    {"type": "phone", "number": number, "kind": "mobile", "delivery": delivery})


def refused_with(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.json
    assert response.json["error"] == error, response.json
    return response.json


# --- where calls and texts may go -----------------------------------------------------------------


@pytest.mark.parametrize("number, says", [
    ("+881631234567", "satellite phones"),  # Iridium
    ("+870773123456", "Inmarsat satellite phones"),
    ("+8823456789012", "international networks"),
    ("+5351234567", "the United Kingdom, the Isle of Man, Jersey and Guernsey"),  # Cuba
    ("+79123456789", "the United Kingdom, the Isle of Man, Jersey and Guernsey"),  # Russia
    ("+37121234567", "the United Kingdom, the Isle of Man, Jersey and Guernsey"),  # Latvia
    ("+33612345678", "the United Kingdom, the Isle of Man, Jersey and Guernsey"),  # France
])
@pytest.mark.parametrize("delivery", ["sms", "voice"])
def test_registering_a_satellite_or_not_allowed_number_is_refused_and_nothing_is_sent(
        api, run, runtime, fake, bob, number, says, delivery):
    body = refused_with(register(api, "bob", number, delivery), 422, "destination_not_allowed")
    assert says in body["message"]
    assert fake.texts == [] and fake.calls == []
    assert count(runtime, Method) == 0 and count(runtime, SendRecord) == 0


def test_an_international_premium_rate_number_stays_refused_as_not_direct_dial(api, fake, bob):
    refused_with(register(api, "bob", "+979123456789"), 422, "not_direct_dial")
    assert fake.texts == []


def test_a_jersey_number_is_allowed_with_the_charges_notice(api, fake, bob):
    response = register(api, "bob", JERSEY_MOBILE)
    assert response.status_code == 201, response.json
    assert "charges may apply" in response.json["notice"]
    assert [to for to, _code in fake.texts] == [JERSEY_MOBILE]


def test_a_number_registered_before_the_setting_changed_is_not_called_nor_texted(
        app_config, api, run, runtime, fake, clock):
    phone = new_person(run, "manx", ISLE_OF_MAN_MOBILE)
    assert challenge(api, "manx", phone["sms"]).status_code == 201  # allowed by default
    # The operator sets TELEPHONY_ALLOWED_COUNTRIES=GB: the same database, a new start.
    gb_only = create_app({**app_config, "TELEPHONY_ALLOWED_COUNTRIES": "GB"})
    gb_only.config["TESTING"] = True
    use_fake(gb_only.extensions["mfa"], fake)
    from tests.helpers import ApiClient

    restarted = ApiClient(gb_only.test_client(), api.key)
    clock.advance(60)
    for method in ("sms", "voice"):
        body = refused_with(challenge(restarted, "manx", phone[method]), 422, "destination_not_allowed")
        assert body["message"].startswith("Calls and texts go only to numbers in the United Kingdom.")
    assert len(fake.texts) == 1 and fake.calls == []
    with gb_only.extensions["mfa"].sessions() as s:
        assert s.scalars(select(AuditEvent.reason).where(AuditEvent.event == "challenge_refused")).all() == [
            "destination_not_allowed"] * 2
    gb_only.extensions["mfa"].engine.dispose()


def test_a_satellite_number_stored_before_these_rules_is_never_called(api, run, fake):
    phone = new_person(run, "sailor", "+881631234567")
    refused_with(challenge(api, "sailor", phone["voice"]), 422, "destination_not_allowed")
    assert fake.calls == []


@pytest.mark.parametrize("number", ["+449098790000", "+448443221234"])  # 09 and 0844: premium rate to phonenumbers
def test_a_premium_or_shared_cost_number_stored_without_the_typed_checks_is_never_called(api, run, fake, number):
    phone = new_person(run, "caller", number)
    refused_with(challenge(api, "caller", phone["voice"]), 422, "destination_not_allowed")
    assert fake.calls == []


# --- per number ---------------------------------------------------------------------------------


def test_a_number_gets_at_most_the_daily_cap_of_texts_and_calls_in_24_hours(api, run, runtime, fake, clock):
    set_limits(runtime, **{limits.SENDS_PER_NUMBER_DAY: 3})
    phone = new_person(run, "bob", UK_MOBILE)
    first_sent = clock.now()
    for method in ("sms", "voice", "sms"):
        assert challenge(api, "bob", phone[method]).status_code == 201
        clock.advance(hours=2)  # past the hourly caps
    body = refused_with(challenge(api, "bob", phone["sms"]), 429, "rate_limited")
    assert body["retry_after"] == (first_sent + timedelta(hours=24) - clock.now()).total_seconds()
    assert len(fake.texts) + len(fake.calls) == 3
    clock.set(first_sent + timedelta(hours=24))
    assert challenge(api, "bob", phone["sms"]).status_code == 201


def test_change_notices_count_toward_the_budget_only_not_the_hourly_caps(api, run, runtime, fake, clock):
    phone = new_person(run, "bob", UK_MOBILE)

    def notices(db, svc):
        user_id = db.scalar(select(Method.user_id).where(Method.id == phone["sms"]))
        db.add_all([SendRecord(at=svc.clock.now(), user_id=user_id, phone_lookup=svc.vault.keyed_hash(UK_MOBILE),
                               type="notice") for _ in range(20)])
    run(notices)
    assert challenge(api, "bob", phone["sms"]).status_code == 201
    assert len(fake.texts) == 1


def press_nothing(run, method_id: str, status: str) -> None:
    """The call of the newest challenge to `method_id` ends as Twilio reports it."""
    def end(db, svc):
        from models import Challenge

        newest = db.scalars(select(Challenge).where(Challenge.method_id == method_id)
                            .order_by(Challenge.created_at.desc())).first()
        calls.status_changed(db, svc, newest.id, newest.provider_sid, status)
    run(end)


@pytest.mark.parametrize("ending", ["no-answer", "busy"])
def test_after_three_unanswered_calls_the_number_gets_texts_but_no_calls_until_the_next_day(
        api, run, runtime, fake, clock, ending):
    phone = new_person(run, "bob", UK_MOBILE)
    started = clock.now()
    for _ in range(3):
        assert challenge(api, "bob", phone["voice"]).status_code == 201
        press_nothing(run, phone["voice"], ending)
        clock.advance(minutes=1)
    with runtime.sessions() as s:
        records = s.scalars(select(SendRecord).order_by(SendRecord.id)).all()
        assert [r.outcome for r in records] == ["unanswered"] * 3 and all(r.challenge_id for r in records)
    body = refused_with(challenge(api, "bob", phone["voice"]), 429, "rate_limited")
    assert "will not call it again today" in body["message"]
    assert body["retry_after"] == (started + timedelta(hours=24) - clock.now()).total_seconds()
    assert len(fake.calls) == 3
    assert challenge(api, "bob", phone["sms"]).status_code == 201  # texts still go
    clock.set(started + timedelta(hours=24))  # the next day
    assert challenge(api, "bob", phone["voice"]).status_code == 201
    assert len(fake.calls) == 4


@pytest.mark.parametrize("ending", ["failed", "completed"])
def test_a_failed_call_or_one_hung_up_is_not_counted_as_unanswered(api, run, runtime, fake, clock, ending):
    phone = new_person(run, "bob", UK_MOBILE)
    for _ in range(4):
        assert challenge(api, "bob", phone["voice"]).status_code == 201
        press_nothing(run, phone["voice"], ending)
        clock.advance(minutes=1)
    assert len(fake.calls) == 4


def test_a_burst_of_new_numbers_in_one_range_is_slowed_and_known_numbers_keep_working(api, run, runtime, fake, clock):
    per_range = Limits().number(limits.NEW_NUMBERS_PER_RANGE)
    phones = [new_person(run, f"p{i}", f"+447400123{i:03d}") for i in range(per_range + 1)]
    other_range = new_person(run, "other", "+447400987001")
    first = clock.now()
    for i in range(per_range):
        assert challenge(api, f"p{i}", phones[i]["sms"]).status_code == 201
        clock.advance(minutes=1)
    body = refused_with(challenge(api, f"p{per_range}", phones[per_range]["sms"]), 429, "rate_limited")
    assert body["retry_after"] == (first + timedelta(hours=1) - clock.now()).total_seconds()
    assert challenge(api, "p0", phones[0]["voice"]).status_code == 201  # texted in the hour: not new
    assert challenge(api, "other", other_range["sms"]).status_code == 201  # another range
    assert len(fake.texts) + len(fake.calls) == per_range + 2
    clock.set(first + timedelta(hours=1, seconds=1))  # p1..p4 and p0's call are still in the hour
    refused_with(challenge(api, f"p{per_range}", phones[per_range]["sms"]), 429, "rate_limited")
    clock.set(first + timedelta(hours=1, minutes=1, seconds=1))  # p1's text has left it
    assert challenge(api, f"p{per_range}", phones[per_range]["sms"]).status_code == 201
    with runtime.sessions() as s:
        assert None not in s.scalars(select(SendRecord.range_lookup)).all()


# --- the whole service's daily budget -------------------------------------------------------------


@pytest.fixture
def app_and_phone(api, run, runtime, fake, bob, clock, totp_bob):
    """bob with an authenticator app and a mobile; the budget lowered to 2."""
    set_limits(runtime, **{limits.TELEPHONY_BUDGET: 2})
    sms_id, voice_id = add_phone(run, bob, UK_MOBILE, types=("sms", "voice"))

    def text_by_default(db, svc):
        for method in db.scalars(select(Method)):
            method.is_default = method.id == sms_id
    run(text_by_default)
    return totp_bob, {"sms": sms_id, "voice": voice_id}


def until_midnight(clock) -> int:
    now = clock.now()
    return int((now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - now).total_seconds())


def budget_gauge(client) -> float:
    found = re.search(r"^mfa_telephony_budget_remaining ([0-9.]+)$", client.get("/metrics").text, re.M)
    assert found, "no mfa_telephony_budget_remaining on /metrics"
    return float(found.group(1))


def test_a_spent_budget_switches_calls_and_texts_off_and_the_app_still_works(
        api, client, fake, clock, caplog, app_and_phone, runtime):
    secret, phone = app_and_phone
    caplog.set_level(logging.INFO)
    assert budget_gauge(client) == 2  # there before the first send
    auth = start_sign_in(api, "bob")
    assert {m["type"] for m in auth["methods"]} == {"totp", "sms", "voice"}
    assert challenge(api, "bob", phone["sms"]).status_code == 201
    assert budget_gauge(client) == 1
    clock.advance(60)
    assert challenge(api, "bob", phone["voice"]).status_code == 201
    assert budget_gauge(client) == 0
    for method in ("sms", "voice", "sms"):
        clock.advance(60)
        body = refused_with(challenge(api, "bob", phone[method]), 429, "rate_limited")
        assert body["retry_after"] == until_midnight(clock)
        assert "paused for today" in body["message"] and "authenticator app" in body["message"]
    assert len(fake.texts) == 1 and len(fake.calls) == 1 and budget_gauge(client) == 0
    # Only app methods are offered, and the default moves to the app.
    auth = start_sign_in(api, "bob")
    assert [(m["type"], m["default"]) for m in auth["methods"]] == [("totp", True)]
    done = api.post(f"/authentications/{auth['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    assert done.json["status"] == "approved"
    # One ERROR line and one audit event for the day, however many refusals.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "TELEPHONY_DAILY_BUDGET=2" in errors[0].getMessage()
    assert "7400123456" not in caplog.text
    with runtime.sessions() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.event == BUDGET_SPENT)).all()) == 1


def test_the_budget_refusal_waits_until_midnight_utc_and_comes_back_the_next_day(
        api, client, fake, clock, app_and_phone, runtime, caplog):
    _secret, phone = app_and_phone
    for method in ("sms", "voice"):
        assert challenge(api, "bob", phone[method]).status_code == 201
        clock.advance(60)
    body = refused_with(challenge(api, "bob", phone["sms"]), 429, "rate_limited")
    assert body["retry_after"] == until_midnight(clock)
    clock.advance(seconds=until_midnight(clock))  # 00:00 UTC
    assert budget_gauge(client) == 2
    auth = start_sign_in(api, "bob")
    assert {m["type"] for m in auth["methods"]} == {"totp", "sms", "voice"}
    caplog.clear()
    assert challenge(api, "bob", phone["sms"]).status_code == 201
    clock.advance(60)
    challenge(api, "bob", phone["sms"])
    clock.advance(60)
    refused_with(challenge(api, "bob", phone["sms"]), 429, "rate_limited")
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1  # the new day's line
    with runtime.sessions() as s:
        assert len(s.scalars(select(AuditEvent).where(AuditEvent.event == BUDGET_SPENT)).all()) == 2


def test_a_send_refused_for_another_reason_does_not_spend_the_budget_nor_announce_it(
        api, client, fake, clock, caplog, app_and_phone):
    _secret, phone = app_and_phone
    auth = start_sign_in(api, "bob")
    assert api.post(f"/authentications/{auth['id']}/challenges", {"method_id": phone["sms"]}).status_code == 201
    too_soon = api.post(f"/authentications/{auth['id']}/challenges", {"method_id": phone["sms"]})
    assert "Wait" in refused_with(too_soon, 429, "rate_limited")["message"]  # the resend spacing
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR] and budget_gauge(client) == 1
    clock.advance(30)
    assert api.post(f"/authentications/{auth['id']}/challenges", {"method_id": phone["sms"]}).status_code == 201
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1 and budget_gauge(client) == 0


def test_registering_a_phone_is_refused_while_the_budget_is_spent(api, run, runtime, fake, clock, app_and_phone):
    _secret, phone = app_and_phone
    for method in ("sms", "voice"):
        assert challenge(api, "bob", phone[method]).status_code == 201
        clock.advance(60)
    new_person(run, "newcomer")
    body = refused_with(register(api, "newcomer", "+447400555666"), 429, "rate_limited")
    assert "paused for today" in body["message"]
    assert len(fake.texts) + len(fake.calls) == 2
    # The app can still be registered.
    auth = start_sign_in(api, "newcomer", expect="registration_required")
    assert api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"}).status_code == 201


def test_while_the_budget_is_spent_the_registration_page_offers_only_the_apps(
        api, client, run, fake, clock, app_and_phone):
    from tests.browser_steps import password_step

    new_person(run, "newcomer")
    password_step(client, "newcomer")
    before = client.get("/register").get_data(as_text=True)
    assert 'value="mobile"' in before and "paused" not in before
    _secret, phone = app_and_phone
    for method in ("sms", "voice"):
        assert challenge(api, "bob", phone[method]).status_code == 201
        clock.advance(60)
    page = client.get("/register").get_data(as_text=True)
    assert 'value="mobile"' not in page and 'value="app"' in page and 'value="push"' in page
    assert "Calls and texts are paused for today" in page


@postgres_only
def test_twenty_sends_at_once_stop_exactly_at_the_daily_budget(runtime, run):
    budget = 7
    fake = FakeTelephony()
    use_fake(runtime, fake)
    set_limits(runtime, **{limits.TELEPHONY_BUDGET: budget})
    svc = runtime.services
    jobs = []
    for i in range(WAYS):  # twenty people, twenty numbers in twenty ranges: only the budget stops them
        phone = new_person(run, f"person{i}", f"+447400{i:03d}123")
        auth_id = start_sign_in(run, f"person{i}")["id"]
        jobs.append(lambda s, a=auth_id, m=phone["sms"]: challenges.start_challenge(
            Transactions(s), svc, a, m, "127.0.0.1"))
    outcomes = all_at_once(runtime, jobs)
    assert outcomes == ["ok"] * budget + ["rate_limited"] * (WAYS - budget)
    assert len(fake.texts) == budget == count(runtime, SendRecord)
    assert count(runtime, AuditEvent, AuditEvent.event == BUDGET_SPENT) == 1
