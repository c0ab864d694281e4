"""Registration and sign-in by texted code, end to end through the API and the stand-in over HTTP."""
from __future__ import annotations

import hashlib
import logging
import re

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from mfa.vault import Vault
from models import Challenge, Method
from tests.conftest import TEST_DATA_KEY
from tests.helpers import add_phone, last_code, register_mobile, start_sign_in
from tests.personas import MOBILE

def count(live, model, *where):
    with live.app.extensions["mfa"].sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_a_person_registers_a_mobile_by_text_and_signs_in_with_it_later(live, phones, bob):
    auth, registered = register_mobile(live, phones)
    assert registered.status_code == 201, registered.text
    assert registered.json()["status"] == "pending" and registered.json()["type"] == "sms"
    assert "notice" not in registered.json()
    checked = live.api.post(f"/authentications/{auth['id']}/checks", {"code": last_code(phones)})
    assert checked.status_code == 200 and checked.json()["status"] == "approved"
    methods = {m["type"]: m for m in checked.json()["methods"]}
    assert set(methods) == {"sms", "voice"}
    assert methods["sms"]["default"] and methods["sms"]["label"] == "+44 •••• ••3456"

    later = start_sign_in(live.api)
    assert later["status"] == "mfa_required"
    challenge = live.api.post(f"/authentications/{later['id']}/challenges", {"method_id": methods["sms"]["id"]})
    assert challenge.status_code == 201 and challenge.json()["type"] == "sms"
    assert live.api.get(f"/authentications/{later['id']}").json()["status"] == "pending"
    done = live.api.post(f"/authentications/{later['id']}/checks", {"code": last_code(phones)})
    assert done.json()["status"] == "approved"


def test_the_text_names_the_service_and_ends_with_an_origin_bound_line(live, phones, bob):
    register_mobile(live, phones)
    phones.wait_idle()
    [message] = phones.messages(to=MOBILE)
    assert message.body.startswith("Your Secure Sign-in code is ")
    assert re.search(r"\n@127\.0\.0\.1 #\d{6}$", message.body)
    assert len(message.body) <= 160


def test_a_resend_invalidates_the_previous_code(live, phones, bob, clock):
    auth, _ = register_mobile(live, phones)
    first = last_code(phones)
    clock.advance(30)
    again = live.api.post(f"/authentications/{auth['id']}/registrations",
                          {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"})
    assert again.status_code == 201
    second = last_code(phones)
    if first != second:
        old = live.api.post(f"/authentications/{auth['id']}/checks", {"code": first})
        assert old.status_code == 400 and old.json()["error"] == "invalid_code"
    assert live.api.post(f"/authentications/{auth['id']}/checks", {"code": second}).json()["status"] == "approved"


def test_a_resend_sooner_than_30_seconds_is_refused_with_the_wait(live, phones, bob, clock):
    auth, _ = register_mobile(live, phones)
    clock.advance(12)
    again = live.api.post(f"/authentications/{auth['id']}/registrations",
                          {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"})
    assert again.status_code == 429
    assert again.json()["error"] == "rate_limited" and again.json()["retry_after"] == 18
    assert again.headers["Retry-After"] == "18"
    assert len(phones.messages(to=MOBILE)) == 1


def test_no_more_than_five_texts_per_sign_in(live, phones, bob, clock):
    auth, _ = register_mobile(live, phones)
    for _ in range(4):
        clock.advance(30)
        assert live.api.post(f"/authentications/{auth['id']}/registrations",
                             {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"}
                             ).status_code == 201
    clock.advance(30)
    sixth = live.api.post(f"/authentications/{auth['id']}/registrations",
                          {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"})
    assert sixth.status_code == 429
    phones.wait_idle()
    assert len(phones.messages(to=MOBILE)) == 5


def test_five_wrong_texted_codes_deny_the_sign_in(live, phones, bob):
    auth, _ = register_mobile(live, phones)
    code = last_code(phones)
    wrong = "000000" if code != "000000" else "111111"
    statuses = [live.api.post(f"/authentications/{auth['id']}/checks", {"code": wrong}).status_code for _ in range(5)]
    assert statuses == [400, 400, 400, 400, 423]
    assert live.api.post(f"/authentications/{auth['id']}/checks", {"code": code}).status_code == 423


def test_a_texted_code_expires_after_five_minutes(live, phones, bob, clock):
    auth, _ = register_mobile(live, phones)
    code = last_code(phones)
    clock.advance(minutes=5)
    late = live.api.post(f"/authentications/{auth['id']}/checks", {"code": code})
    assert late.status_code == 409  # no code is expected any more: the challenge has lapsed


def test_twilio_invalid_number_error_answers_422_and_leaves_only_a_failed_challenge(live, phones, bob):
    phones.set_rest_error(MOBILE, 21211)
    auth, response = register_mobile(live, phones)
    assert response.status_code == 422 and response.json()["error"] == "invalid_number"
    assert count(live, Challenge) == count(live, Challenge, Challenge.status == "failed",
                                           Challenge.reason == "invalid_number") == 1
    assert live.api.get(f"/authentications/{auth['id']}").json()["status"] == "registration_required"


def test_twilio_failing_twice_then_succeeding_sends_one_text(live, phones, bob):
    sleeps: list[float] = []
    live.app.extensions["mfa"].services.telephony.sleep = sleeps.append
    phones.fail_next_requests(2, status=429)  # 429: never acted on, so retried (a 500 is not)
    _, response = register_mobile(live, phones)
    assert response.status_code == 201
    phones.wait_idle()
    assert len(phones.messages(to=MOBILE)) == 1
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1]  # backed off, and longer the second time


def test_twilio_down_answers_503_and_leaves_no_half_made_challenge(live, phones, bob):
    """The reserved challenge is marked failed: nothing can be typed or answered for it."""
    provider = live.app.extensions["mfa"].services.telephony
    provider.sleep = lambda _s: None
    provider.client.api.base_url = "http://127.0.0.1:9"  # nothing listens there
    auth, response = register_mobile(live, phones)
    assert response.status_code == 503 and response.json()["error"] == "provider_unavailable"
    assert count(live, Challenge) == count(live, Challenge, Challenge.status == "failed",
                                           Challenge.reason == "provider_unavailable") == 1
    assert count(live, Method, Method.verified_at.is_not(None)) == 0
    assert live.api.get(f"/authentications/{auth['id']}").json()["status"] == "registration_required"


def test_a_delivery_failure_denies_with_delivery_failed_and_another_method_can_follow(live, phones, bob):
    phones.set_sms_outcome(MOBILE, "undelivered", 30003)
    auth, response = register_mobile(live, phones)
    assert response.status_code == 201
    phones.wait_idle()
    state = live.api.get(f"/authentications/{auth['id']}").json()
    assert (state["status"], state["reason"]) == ("denied", "delivery_failed")
    retry = live.api.post(f"/authentications/{auth['id']}/registrations", {"type": "totp"})
    assert retry.status_code == 201


@pytest.mark.parametrize("number, kind, delivery, error", [
    ("12345", "mobile", "sms", "invalid_number"),
    ("not a number", "mobile", "sms", "invalid_number"),
    ("0113 496 0000", "mobile", "sms", "sms_needs_mobile"),
    ("07400 123456", "office", "sms", "sms_needs_mobile"),
])
def test_numbers_that_cannot_take_texts_are_refused_with_422(live, phones, bob, number, kind, delivery, error):
    auth = start_sign_in(live.api)
    response = live.api.post(f"/authentications/{auth['id']}/registrations",
                             {"type": "phone", "number": number, "kind": kind, "delivery": delivery})
    assert response.status_code == 422 and response.json()["error"] == error
    assert phones.messages() == []


@pytest.mark.parametrize("number", ["07400 123456", "+447400123456", "+44 (0)7400 123 456", "0044 7400 123456"])
def test_national_and_international_forms_reach_the_same_e164_number(live, phones, bob, number):
    _, response = register_mobile(live, phones, number)
    assert response.status_code == 201
    phones.wait_idle()
    assert [m.to for m in phones.messages()] == [MOBILE]


def test_numbers_outside_the_uk_are_allowed_with_a_charges_notice(live, phones, bob):
    _, response = register_mobile(live, phones, "+44 7797 712345")  # Jersey: allowed, not the UK
    assert response.status_code == 201
    assert "charges may apply" in response.json()["notice"]


def test_the_full_number_never_reaches_the_logs(live, phones, bob, caplog):
    caplog.set_level(logging.DEBUG)
    phones.fail_next_requests(1, status=429)
    live.app.extensions["mfa"].services.telephony.sleep = lambda _s: None
    auth, _ = register_mobile(live, phones)
    live.api.post(f"/authentications/{auth['id']}/checks", {"code": last_code(phones)})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "7400123456" not in logged and "7400 123456" not in logged
    assert "••3456" in logged


def is_keyed_hash(stored: str | None, value: str) -> bool:
    """HMAC-SHA256 under the suite's DATA_KEY: not the plain SHA-256, and another key gives another hash."""
    ours, other = Vault([TEST_DATA_KEY]).keyed_hash(value), Vault([Fernet.generate_key().decode()]).keyed_hash(value)
    return stored == ours != other and stored != hashlib.sha256(value.encode()).hexdigest()


def test_phone_numbers_are_encrypted_at_rest_and_looked_up_by_a_keyed_hash(live, phones, bob):
    register_mobile(live, phones)
    with live.app.extensions["mfa"].sessions() as s:
        method = s.scalars(select(Method)).one()
        assert b"7400123456" not in method.phone_encrypted
        assert Vault([TEST_DATA_KEY]).decrypt(method.phone_encrypted) == MOBILE
        assert is_keyed_hash(method.phone_lookup, MOBILE)


def test_texted_codes_are_stored_only_as_a_keyed_hash_scoped_to_their_challenge(live, phones, bob):
    register_mobile(live, phones)
    code = last_code(phones)
    with live.app.extensions["mfa"].sessions() as s:
        challenge = s.scalars(select(Challenge)).one()
        assert is_keyed_hash(challenge.code_hash, f"{challenge.id}:{code}")


def test_texts_to_one_number_are_capped_across_sign_ins(live, phones, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    statuses = []
    for _ in range(11):
        auth = start_sign_in(live.api)
        sms = next(m["id"] for m in auth["methods"] if m["type"] == "sms")
        statuses.append(live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": sms}).status_code)
        clock.advance(1)
    assert statuses == [201] * 10 + [429]
    clock.advance(hours=1)
    auth = start_sign_in(live.api)
    sms = next(m["id"] for m in auth["methods"] if m["type"] == "sms")
    assert live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": sms}).status_code == 201


def test_registration_texts_to_many_numbers_are_capped_per_person(live, phones, bob, clock):
    codes = []
    for n in range(16):  # each in its own number range (a burst of new numbers in one range is slowed)
        auth = start_sign_in(live.api)
        codes.append(live.api.post(f"/authentications/{auth['id']}/registrations", {
            "type": "phone", "number": f"+447400{n:02d}3456", "kind": "mobile", "delivery": "sms"}).status_code)
    assert codes == [201] * 15 + [429]


def test_a_second_registering_sign_in_cannot_replace_a_phone_registered_meanwhile(live, phones, bob):
    first, second = start_sign_in(live.api), start_sign_in(live.api)
    live.api.post(f"/authentications/{first['id']}/registrations",
                  {"type": "phone", "number": MOBILE, "kind": "mobile", "delivery": "sms"})
    phones.wait_idle()
    code = last_code(phones)
    assert live.api.post(f"/authentications/{first['id']}/checks", {"code": code}).json()["status"] == "approved"
    late = live.api.post(f"/authentications/{second['id']}/registrations",
                         {"type": "phone", "number": "+447400999888", "kind": "mobile", "delivery": "sms"})
    assert late.status_code == 409
