"""Microsoft Entra external MFA: every request that must not lead to a verified answer (issue 15).

Requests that are not Entra's for this provider get a plain 400 page and nothing is posted anywhere.
Requests that are Entra's but cannot be served are answered at once with error=access_denied (or
temporarily_unavailable) and the request's state, before anyone is called. Alice is linked to the
hint's person in each case, so a check that broke would show up as a call to her phone.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from mfa.entra import links
from models import AuditEvent, Authentication, EntraRequest
from tests.browser_steps import post_form
from tests.conftest import run_in
from tests.entra_fixture import (CLIENT_ID, OTHER_TENANT, PATH, REDIRECT_URI, TENANT, EntraPlayer, SigningKey,
                                 read_answer)
from tests.entra_fixture import entra, web  # noqa: F401  (fixtures)
from tests.helpers import run_together
from tests.personas import ALICE
from tests.test_races import postgres_only


@pytest.fixture
def app_config(app_config, entra):
    # Linking oneself is tested in tests/test_entra_linking.py: here an unlinked Entra user is refused outright.
    return {**app_config, **entra.settings, "EAM_SELF_LINK": "false"}


@pytest.fixture
def oid(live, alice) -> str:
    """The Entra object id linked to alice: a request that got through would call her."""
    object_id = str(uuid.uuid4())
    run_in(live.app, lambda db, svc: links.link(db, svc, alice.username, TENANT, object_id))
    return object_id


# --- what the tests look at -----------------------------------------------------------------


def denied(response, form: dict[str, str], error: str = "access_denied") -> dict[str, str]:
    """The auto-posting answer page, telling Microsoft `error` with the request's own state."""
    assert response.status_code == 200, response.get_data(as_text=True)
    action, fields = read_answer(response.get_data(as_text=True))
    assert action == REDIRECT_URI
    assert fields["error"] == error and fields["state"] == form["state"]
    assert "id_token" not in fields
    return fields


def nothing_started(live, phones) -> None:
    """No call or text went out, and no sign-in or request row was made."""
    phones.wait_idle()
    assert phones.calls() == [] and phones.messages() == []
    assert count(live, Authentication, Authentication.purpose == "entra") == 0
    assert count(live, EntraRequest) == 0


def count(live, model, *where) -> int:
    return run_in(live.app, lambda db, svc: db.scalar(select(func.count()).select_from(model).where(*where)))


def audited(live, event: str) -> list[tuple[str, str | None]]:
    return run_in(live.app, lambda db, svc: [(e.outcome, e.reason) for e in db.scalars(
        select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id))])


def declined_reasons(live) -> list[str | None]:
    return [reason for outcome, reason in audited(live, "entra_request") if outcome == "declined"]


# --- not Entra's request for this provider: a plain 400 page, nothing posted -----------------


LOOK_ALIKES = {
    "http instead of https": "http://login.microsoftonline.com/common/federation/externalauthprovider",
    "trailing slash": REDIRECT_URI + "/",
    "extra path": REDIRECT_URI + "/callback",
    "query string": REDIRECT_URI + "?next=https://evil.example/",
    "another host": "https://login.microsoftonline.com.evil.example/common/federation/externalauthprovider",
    "upper-case host": "https://LOGIN.MICROSOFTONLINE.COM/common/federation/externalauthprovider",
    "fragment": REDIRECT_URI + "#fragment",
    "someone else's site": "https://evil.example/collect",
    "empty": "",
}


def refused_outright(response) -> str:
    """The service's own 400 page (not a framework page), with no form that posts anywhere."""
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This sign-in request cannot be used" in page
    assert '<form id="entra-answer"' not in page and "data-submit-on-load" not in page
    return page


@pytest.mark.parametrize("redirect_uri", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_a_redirect_uri_that_is_not_exactly_microsofts_gets_a_plain_400_page(web, live, phones, entra, oid, clock,
                                                                              redirect_uri):
    form = entra.form(entra.hint(clock.now(), oid=oid), redirect_uri=redirect_uri)
    page = refused_outright(web.post(f"{PATH}/authorize", data=form))
    assert "return address that is not Microsoft" in page
    nothing_started(live, phones)
    assert audited(live, "entra_request") == [("refused", "bad_redirect_uri")]


def test_a_request_with_no_redirect_uri_gets_a_plain_400_page(web, live, phones, entra, oid, clock):
    form = entra.form(entra.hint(clock.now(), oid=oid))
    del form["redirect_uri"]
    refused_outright(web.post(f"{PATH}/authorize", data=form))
    nothing_started(live, phones)


@pytest.mark.parametrize("client_id", ["00000000-0000-0000-0000-000000000000", CLIENT_ID.upper(), ""])
def test_an_unknown_client_id_gets_a_plain_400_page(web, live, phones, entra, oid, clock, client_id):
    form = entra.form(entra.hint(clock.now(), oid=oid), client_id=client_id)
    assert "unknown client_id" in refused_outright(web.post(f"{PATH}/authorize", data=form))
    nothing_started(live, phones)
    assert audited(live, "entra_request") == [("refused", "unknown_client_id")]


def test_the_authorization_endpoint_answers_entras_probe(web):
    response = web.get(f"{PATH}/authorize")
    assert response.status_code == 200
    assert "Microsoft Entra verification" in response.get_data(as_text=True)


# --- the id_token_hint: access_denied, nobody called ----------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(entra: EntraPlayer, now: datetime, oid: str, alg: str) -> str:
    """A hint with Entra's claims and kid, "signed" alg none, or HS256 keyed with Entra's public key
    (the classic confusion attack: a verifier that lets the token pick its algorithm accepts it)."""
    claims = jwt.decode(entra.hint(now, oid=oid).token, options={"verify_signature": False})
    header = {"alg": alg, "typ": "JWT", "kid": entra.key.kid}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    if alg == "none":
        return signing_input + "."
    public_pem = entra.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"{signing_input}.{_b64url(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"


HintMaker = Callable[[EntraPlayer, datetime, str], str]
BAD_HINTS: dict[str, tuple[HintMaker, str]] = {
    "signed by another key with the same kid": (
        lambda e, now, oid: e.hint(now, oid=oid, key=SigningKey.make(kid=e.key.kid)).token, "bad_signature"),
    "a kid Entra does not publish": (
        lambda e, now, oid: e.hint(now, oid=oid, kid="not-a-published-kid").token, "unknown_kid"),
    "the v1 issuer": (
        lambda e, now, oid: e.hint(now, oid=oid, iss=f"https://sts.windows.net/{TENANT}/").token, "wrong_issuer"),
    "another cloud's issuer": (
        lambda e, now, oid: e.hint(now, oid=oid, iss=f"https://login.microsoftonline.us/{TENANT}/v2.0").token,
        "wrong_issuer"),
    "another tenant's issuer": (
        lambda e, now, oid: e.hint(now, oid=oid, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0").token,
        "wrong_issuer"),
    "a tenant not allowed": (lambda e, now, oid: e.hint(now, oid=oid, tid=OTHER_TENANT).token, "tenant_not_allowed"),
    "another app's audience": (
        lambda e, now, oid: e.hint(now, oid=oid, aud="99998888-7777-6666-5555-444433332222").token, "wrong_audience"),
    "issued over 10 minutes ago": (
        lambda e, now, oid: e.hint(now - timedelta(minutes=10, seconds=1), oid=oid).token, "stale_hint"),
    "issued a day ago": (lambda e, now, oid: e.hint(now - timedelta(days=1), oid=oid).token, "stale_hint"),
    "issued over 5 minutes ahead": (
        lambda e, now, oid: e.hint(now + timedelta(minutes=5, seconds=1), oid=oid).token, "stale_hint"),
    "issued far in the future": (lambda e, now, oid: e.hint(now + timedelta(days=365), oid=oid).token, "stale_hint"),
    "no sub": (lambda e, now, oid: e.hint(now, oid=oid, drop=("sub",)).token, "missing_sub"),
    "no oid": (lambda e, now, oid: e.hint(now, oid=oid, drop=("oid",)).token, "missing_oid"),
    "no tid": (lambda e, now, oid: e.hint(now, oid=oid, drop=("tid",)).token, "missing_tid"),
    "no iat": (lambda e, now, oid: e.hint(now, oid=oid, drop=("iat",)).token, "missing_iat"),
    "alg none": (lambda e, now, oid: forged(e, now, oid, "none"), "bad_algorithm"),
    "HS256 keyed with the public key": (lambda e, now, oid: forged(e, now, oid, "HS256"), "bad_algorithm"),
    "not a JWT at all": (lambda e, now, oid: "not-a-jwt", "malformed_hint"),
    "empty": (lambda e, now, oid: "", "missing_hint"),
}


@pytest.mark.parametrize(("make", "why"), BAD_HINTS.values(), ids=BAD_HINTS.keys())
def test_a_bad_id_token_hint_is_answered_access_denied_and_nobody_is_called(web, live, phones, entra, oid, clock,
                                                                            make, why):
    form = entra.form(make(entra, clock.now(), oid))
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == [why]


def test_a_request_with_no_id_token_hint_is_answered_access_denied(web, live, phones, entra, oid, clock):
    form = entra.form(entra.hint(clock.now(), oid=oid))
    del form["id_token_hint"]
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == ["missing_hint"]


def test_a_hint_ten_minutes_old_by_the_apps_clock_is_still_served(web, live, phones, entra, oid, clock):
    """The other side of the stale cases: the age is the app's clock's, and exactly 10 minutes is in."""
    form = entra.form(entra.hint(clock.now() - timedelta(minutes=10), oid=oid))
    assert web.post(f"{PATH}/authorize", data=form).status_code == 302
    phones.wait_idle()
    assert len(phones.calls(to=ALICE)) == 1


def test_entras_keys_unreachable_is_answered_temporarily_unavailable(web, live, phones, entra, oid, clock):
    entra.failing = True
    form = entra.form(entra.hint(clock.now(), oid=oid))
    denied(web.post(f"{PATH}/authorize", data=form), form, error="temporarily_unavailable")
    assert entra.fetches >= 1  # it did try Microsoft
    nothing_started(live, phones)
    assert declined_reasons(live) == ["entra_keys_unavailable"]


# --- the claims Entra asks for --------------------------------------------------------------


MALFORMED_CLAIMS = {
    "not JSON": "{id_token: acr}",
    "a JSON array": json.dumps([{"id_token": {}}]),
    "a JSON string": json.dumps("possessionorinherence"),
    "id_token not an object": json.dumps({"id_token": ["acr"]}),
    "acr not an object": json.dumps({"id_token": {"acr": "possessionorinherence"}}),
    "acr values not a list": json.dumps({"id_token": {"acr": {"values": "possessionorinherence"}}}),
    "acr values empty": json.dumps({"id_token": {"acr": {"values": []}}}),
    "amr values empty": json.dumps({"id_token": {"amr": {"values": []}}}),
    "amr values not strings": json.dumps({"id_token": {"amr": {"values": [1, None]}}}),
    "deeply nested arrays": "[" * 2000 + "]" * 2000,
    "deeply nested inside values": '{"id_token": {"acr": {"values": ' + "[" * 1500 + "]" * 1500 + "}}}",
    "too long": json.dumps({"id_token": {"acr": {"values": ["possession"] * 400}}}),
}


@pytest.mark.parametrize("claims", MALFORMED_CLAIMS.values(), ids=MALFORMED_CLAIMS.keys())
def test_malformed_claims_are_answered_access_denied_not_a_crash(web, live, phones, entra, oid, clock, claims):
    form = entra.form(entra.hint(clock.now(), oid=oid), claims=claims)
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == ["malformed_claims"]


def _asking(acrs: list[str] | None = None, amrs: list[str] | None = None) -> dict[str, Any]:
    id_token: dict[str, Any] = {}
    if acrs is not None:
        id_token["acr"] = {"essential": True, "values": acrs}
    if amrs is not None:
        id_token["amr"] = {"essential": True, "values": amrs}
    return {"id_token": id_token}


UNMET = {
    "acr knowledge only": (_asking(acrs=["knowledge"]), "acr_not_met"),
    "acr inherence only": (_asking(acrs=["inherence"]), "acr_not_met"),
    "acr knowledge or inherence": (_asking(acrs=["knowledge", "inherence"]), "acr_not_met"),
    "amr fido only": (_asking(amrs=["fido"]), "amr_not_met"),
    "amr otp only (alice has phones)": (_asking(amrs=["otp"]), "amr_not_met"),
    "amr swk only (alice has no app)": (_asking(amrs=["swk"]), "amr_not_met"),
}


@pytest.mark.parametrize(("claims", "why"), UNMET.values(), ids=UNMET.keys())
def test_claims_alices_methods_cannot_meet_are_answered_before_anyone_is_called(web, live, phones, entra, oid,
                                                                               clock, claims, why):
    form = entra.form(entra.hint(clock.now(), oid=oid), claims=claims)
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == [why]


def test_a_linked_person_with_no_methods_yet_is_answered_access_denied(web, live, phones, entra, bob, clock):
    hint = entra.hint(clock.now())
    run_in(live.app, lambda db, svc: links.link(db, svc, bob.username, TENANT, hint.oid))
    form = entra.form(hint)
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == ["no_methods"]


def test_an_entra_user_linked_to_nobody_is_answered_access_denied(web, live, phones, entra, oid, clock):
    form = entra.form(entra.hint(clock.now()))  # a fresh oid: alice's link is to another one
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == ["unknown_person"]


# --- the nonce is used once ------------------------------------------------------------------


def test_the_same_request_posted_twice_starts_one_sign_in(web, live, phones, entra, oid, clock):
    form = entra.form(entra.hint(clock.now(), oid=oid))
    assert web.post(f"{PATH}/authorize", data=form).status_code == 302
    again = live.app.test_client().post(f"{PATH}/authorize", data=form)  # a replay, from another browser
    denied(again, form)
    phones.wait_idle()
    assert len(phones.calls()) == 1
    assert count(live, EntraRequest) == 1
    assert declined_reasons(live) == ["replayed_nonce"]


def test_the_same_hint_with_a_fresh_nonce_starts_no_second_sign_in(web, live, phones, entra, oid, clock):
    hint = entra.hint(clock.now(), oid=oid)
    assert web.post(f"{PATH}/authorize", data=entra.form(hint)).status_code == 302
    again = entra.form(hint)  # a new nonce and state around a hint already used
    denied(live.app.test_client().post(f"{PATH}/authorize", data=again), again)
    phones.wait_idle()
    assert len(phones.calls()) == 1
    assert declined_reasons(live) == ["replayed_hint"]


@postgres_only
def test_twenty_browsers_posting_one_request_at_once_start_exactly_one_sign_in(live, phones, entra, oid, clock):
    form = entra.form(entra.hint(clock.now(), oid=oid))

    def post() -> str:
        response = requests.post(f"{live.url}{PATH}/authorize", data=form, allow_redirects=False, timeout=30)
        if response.status_code == 302:
            return "started"
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return read_answer(response.text)[1]["error"]

    assert run_together([post] * 20) == ["access_denied"] * 19 + ["started"]
    phones.wait_idle()
    assert len(phones.calls()) == 1
    assert count(live, EntraRequest) == 1
    assert count(live, Authentication, Authentication.purpose == "entra") == 1
    reasons = declined_reasons(live)  # the nonce, or the hint (the same one), seen used
    assert len(reasons) == 19 and set(reasons) <= {"replayed_nonce", "replayed_hint"}


# --- the person does not verify ------------------------------------------------------------------


def started(web, phones, entra, oid, clock) -> tuple[dict[str, str], str]:
    """A served request: the form, and the call it started (ringing on alice's phone)."""
    form = entra.form(entra.hint(clock.now(), oid=oid))
    response = web.post(f"{PATH}/authorize", data=form)
    assert response.status_code == 302 and response.headers["Location"].endswith("/verify")
    phones.wait_idle()
    calls = phones.calls(to=ALICE)
    assert len(calls) == 1
    return form, calls[0].sid


def test_cancel_after_an_unanswered_call_tells_microsoft_access_denied(web, live, phones, entra, oid, clock):
    form, sid = started(web, phones, entra, oid, clock)
    phones.ring_out(sid)
    phones.wait_idle()
    assert phones.call(sid).status == "no-answer"
    denied(post_form(web, "/sign-in/cancel", token_from="/verify"), form)
    assert ("denied", "cancelled_by_person") in audited(live, "entra_answered")
    # The answer was given once: the page again says the sign-in ended, with no second answer.
    assert '<form id="entra-answer"' not in web.get("/verify").get_data(as_text=True)


def test_a_sign_in_left_past_five_minutes_tells_microsoft_access_denied(web, live, phones, entra, oid, clock):
    form, sid = started(web, phones, entra, oid, clock)
    clock.advance(minutes=5, seconds=1)
    denied(web.get("/verify"), form)
    assert ("denied", "timed_out") in audited(live, "entra_answered")
    phones.answer(sid)
    phones.press(sid, "#")  # too late: nothing more goes to Microsoft
    phones.wait_idle()
    assert [outcome for outcome, _ in audited(live, "entra_answered")] == ["denied"]


# --- the state Entra sent comes back as it was --------------------------------------------------


def test_a_state_with_markup_in_it_comes_back_intact_and_inert(web, live, phones, entra, clock):
    state = '"><script>alert(1)</script><input name="id_token" value="x'
    form = entra.form(entra.hint(clock.now()), state=state)  # nobody linked: refused, echoing the state
    response = web.post(f"{PATH}/authorize", data=form)
    assert denied(response, form)["state"] == state
    assert "<script>alert(1)" not in response.get_data(as_text=True)
    nothing_started(live, phones)


def test_a_state_longer_than_4096_characters_gets_a_plain_400_page(web, live, phones, entra, oid, clock):
    hint = entra.hint(clock.now(), oid=oid)
    longest = entra.form(hint, state="s" * 4096)
    assert web.post(f"{PATH}/authorize", data=longest).status_code == 302  # the limit itself is served
    too_long = entra.form(entra.hint(clock.now(), oid=oid), state="s" * 4097)
    refused_outright(web.post(f"{PATH}/authorize", data=too_long))
    phones.wait_idle()
    assert len(phones.calls()) == 1 and count(live, EntraRequest) == 1


# --- odd claims in a hint Entra's key did sign: refused, never a 500 ------------------------------


def signed_with(entra: EntraPlayer, now: datetime, object_id: str, changes: dict[str, Any]) -> str:
    """A hint signed with Entra's own key whose claims are changed as given (signed as raw JSON,
    so PyJWT's own encoder does not refuse the odd ones)."""
    claims = {**jwt.decode(entra.hint(now, oid=object_id).token, options={"verify_signature": False}), **changes}
    return jwt.api_jws.encode(json.dumps(claims).encode(), entra.key.private, algorithm="RS256",
                              headers={"kid": entra.key.kid, "typ": "JWT"})


ODD_CLAIMS: dict[str, tuple[dict[str, Any], str]] = {
    "iat not a number": ({"iat": "yesterday"}, "malformed_hint"),
    "iat true": ({"iat": True}, "malformed_hint"),
    "iat NaN": ({"iat": float("nan")}, "malformed_hint"),
    "iat infinite": ({"iat": float("inf")}, "malformed_hint"),
    "iat beyond any calendar": ({"iat": 10**20}, "malformed_hint"),
    "tid a number": ({"tid": 12345}, "tenant_not_allowed"),
    "tid a list": ({"tid": [TENANT]}, "tenant_not_allowed"),
    "oid a list": ({"oid": ["x"]}, "missing_oid"),
    "oid empty": ({"oid": ""}, "missing_oid"),
    "sub a number": ({"sub": 42}, "malformed_hint"),
    "sub too long": ({"sub": "s" * 129}, "missing_sub"),
    "aud a number": ({"aud": 7}, "wrong_audience"),
    "iss null": ({"iss": None}, "missing_iss"),
    "oid with a NUL": ({"oid": "0000aaaa-\x00000-0000-0000-000000000000"}, "missing_oid"),
    "oid not a GUID": ({"oid": "alice"}, "missing_oid"),
    "sub with a NUL": ({"sub": "sub\x00ject"}, "missing_sub"),
    "iss a list": ({"iss": [f"https://login.microsoftonline.com/{TENANT}/v2.0"]}, "wrong_issuer"),
}


@pytest.mark.parametrize(("changes", "why"), ODD_CLAIMS.values(), ids=ODD_CLAIMS.keys())
def test_a_signed_hint_with_odd_claims_is_answered_access_denied(web, live, phones, entra, oid, clock, changes, why):
    form = entra.form(signed_with(entra, clock.now(), oid, changes))
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == [why]


# PostgreSQL text cannot hold NUL: a field that reached the database with one was a 500 there.


def test_a_nul_in_the_state_gets_a_plain_400_page(web, live, phones, entra, oid, clock):
    form = entra.form(entra.hint(clock.now(), oid=oid), state="state\x00with a NUL")
    refused_outright(web.post(f"{PATH}/authorize", data=form))
    nothing_started(live, phones)


def test_a_nul_in_the_nonce_is_answered_access_denied(web, live, phones, entra, oid, clock):
    form = entra.form(entra.hint(clock.now(), oid=oid), nonce="nonce\x00with a NUL")
    denied(web.post(f"{PATH}/authorize", data=form), form)
    nothing_started(live, phones)
    assert declined_reasons(live) == ["bad_nonce"]


@pytest.mark.parametrize("field", ["client-request-id", "login_hint"])
def test_a_nul_in_a_field_only_logged_or_ignored_is_not_a_reason_to_refuse(web, live, phones, entra, oid, clock,
                                                                          field):
    form = entra.form(entra.hint(clock.now(), oid=oid))
    form[field] = form[field][:8] + "\x00" + form[field][8:]
    assert web.post(f"{PATH}/authorize", data=form).status_code == 302
    phones.wait_idle()
    assert len(phones.calls(to=ALICE)) == 1
