"""Office phones must be direct-dial and DTMF capable; the registration call proves it."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Method
from tests.helpers import start_sign_in


def register(api, number, kind="office", delivery="voice", username="bob"):
    auth = start_sign_in(api, username)
    response = api.post(f"/authentications/{auth['id']}/registrations",
                        {"type": "phone", "number": number, "kind": kind, "delivery": delivery})
    return auth, response


@pytest.mark.parametrize("number", [
    "0113 496 0000 x123", "0113 496 0000 ext. 123", "0113 496 0000 ext 123", "0113 496 0000;ext=123",
    "0113 496 0000,123", "0113 496 0000w123", "+44 113 496 0000 #123",
])
def test_extensions_are_refused(api, bob, number):
    _, response = register(api, number)
    assert response.status_code == 422 and response.json["error"] == "extension_not_allowed"
    assert "switchboard" in response.json["message"]


@pytest.mark.parametrize("number, what", [
    ("0800 123 4567", "freephone"),
    ("0808 157 0000", "freephone"),
    ("0845 123 4567", "business-rate"),
    ("0870 123 4567", "business-rate"),
    ("0909 123 4567", "premium-rate"),
    ("070 1234 5678", "personal"),
    ("0300 123 4567", "organisation-wide"),
    ("0343 123 4567", "organisation-wide"),
])
def test_numbers_that_are_not_one_persons_direct_line_are_refused(api, bob, number, what):
    _, response = register(api, number)
    assert response.status_code == 422 and response.json["error"] == "not_direct_dial"
    assert what in response.json["message"]


def test_hybrid_mailbox_users_cannot_register_an_office_phone(api, carol):
    _, response = register(api, "0113 496 0000", username="carol")
    assert response.status_code == 422 and response.json["error"] == "office_phone_not_allowed"


def test_office_phones_take_calls_only(api, bob):
    _, response = register(api, "0113 496 0000", delivery="sms")
    assert response.status_code == 422 and response.json["error"] == "sms_needs_mobile"


@pytest.mark.parametrize("number, e164", [
    ("0113 496 0000", "+441134960000"),
    ("020 7946 0018", "+442079460018"),
])
def test_geographic_numbers_are_called_and_saved_only_after_hash_is_pressed(live, phones, bob, number, e164):
    auth = start_sign_in(live.api)
    response = live.api.post(f"/authentications/{auth['id']}/registrations",
                             {"type": "phone", "number": number, "kind": "office", "delivery": "voice"})
    assert response.status_code == 201 and response.json()["type"] == "voice"
    phones.wait_idle()
    [call] = phones.calls(to=e164)
    with live.app.extensions["mfa"].sessions() as s:
        assert s.scalars(select(Method).where(Method.verified_at.is_not(None))).all() == []
    phones.answer(call.sid)
    phones.press(call.sid, "#")
    phones.wait_idle()
    final = live.api.get(f"/authentications/{auth['id']}").json()
    assert final["status"] == "approved"
    [method] = final["methods"]
    assert method["type"] == "voice" and method["default"]
    with live.app.extensions["mfa"].sessions() as s:
        saved = s.scalars(select(Method)).one()
        assert saved.kind == "office" and saved.verified_at is not None


def test_a_registration_call_that_is_not_answered_saves_nothing(live, phones, bob):
    phones.set_behaviour("+441134960000", "no-answer")
    auth = start_sign_in(live.api)
    live.api.post(f"/authentications/{auth['id']}/registrations",
                  {"type": "phone", "number": "0113 496 0000", "kind": "office", "delivery": "voice"})
    phones.wait_idle()
    state = live.api.get(f"/authentications/{auth['id']}").json()
    assert (state["status"], state["reason"]) == ("denied", "no_answer")
    with live.app.extensions["mfa"].sessions() as s:
        assert s.scalars(select(Method).where(Method.verified_at.is_not(None))).all() == []


def test_a_landline_registered_as_the_authentication_phone_gets_no_text_method(live, phones, bob):
    auth = start_sign_in(live.api)
    live.api.post(f"/authentications/{auth['id']}/registrations",
                  {"type": "phone", "number": "0113 496 0123", "kind": "mobile", "delivery": "voice"})
    phones.wait_idle()
    sid = phones.calls(to="+441134960123")[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    assert [m["type"] for m in live.api.get(f"/authentications/{auth['id']}").json()["methods"]] == ["voice"]
