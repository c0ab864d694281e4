"""Microsoft Entra external MFA, method by method and rule by rule, through HTTP as a browser goes:
each method answers Entra with its own `amr`, only the methods Entra asked for are offered, and an
Entra sign-in keeps every rule a sign-in here keeps (wrong codes, lockouts, no backups, no session).
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mfa import access_passes, recovery_codes, remembered_browsers
from mfa.entra import links
from models import AccessPass, Method, RecoveryCode, User
from tests.browser_steps import password_step, post_form, signed_in
from tests.conftest import run_in
from tests.entra_fixture import CLAIMS, PATH, REDIRECT_URI, TENANT, read_answer
from tests.entra_fixture import entra, web  # noqa: F401  (fixtures)
from tests.helpers import add_phone, last_code, matched, pyotp_code
from tests.personas import ALICE, MOBILE, person
from tests.test_push_api import registered_phone

ANSWER_FORM = 'id="entra-answer"'
APP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CALLS_ONLY = {"id_token": {"acr": {"essential": True, "values": ["possessionorinherence"]},
                           "amr": {"essential": True, "values": ["tel"]}}}


@pytest.fixture
def app_config(app_config, entra):
    # Remembering browsers is on, so that a remembered browser could skip the second step if it were let.
    return {**app_config, **entra.settings, "REMEMBER_BROWSER_DAYS": "30"}


class Asked:
    """One request from Entra, sent by the browser: what Entra will check the answer against."""

    def __init__(self, web, live, entra, clock, user, claims=CLAIMS):
        self.hint = entra.hint(clock.now())
        run_in(live.app, lambda db, svc: links.link(db, svc, user.username, TENANT, self.hint.oid))
        self.form = entra.form(self.hint, claims=claims)
        self.response = web.post(f"{PATH}/authorize", data=self.form)

    @property
    def started(self) -> bool:
        return self.response.status_code == 302 and self.response.headers["Location"].endswith("/verify")


def text(response) -> str:
    return response.get_data(as_text=True)


def answer_on(web) -> dict[str, str]:
    """The fields of the form the verify page now posts to Microsoft."""
    page = web.get("/verify")
    assert page.status_code == 200, page.headers.get("Location")
    action, fields = read_answer(text(page))
    assert action == REDIRECT_URI
    return fields


def approved_amr(web, entra, asked: Asked, clock) -> list[str]:
    fields = answer_on(web)
    assert "error" not in fields and fields["state"] == asked.form["state"], fields
    return entra.validate(web, fields["id_token"], form=asked.form, hint=asked.hint, now=clock.now())["amr"]


def denied(fields: dict[str, str], asked: Asked) -> bool:
    return (fields.get("error") == "access_denied" and fields["state"] == asked.form["state"]
            and "id_token" not in fields)


def type_code(web, code: str, **extra: str):
    return post_form(web, "/verify/code", {"code": code, **extra}, token_from="/verify")


def offered(web) -> dict[str, str]:
    """"Sign in another way": each choice's words and its method id."""
    page = text(web.get("/verify/other"))
    return {re.sub(r"\s+", " ", label).strip(): method_id for method_id, label in re.findall(
        r'name="method_id" value="([^"]+)">\s*<button[^>]*>(.*?)</button>', page, re.S)}


def answer_call(phones, number: str = ALICE) -> None:
    phones.wait_idle()
    sid = phones.calls(to=number)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()


def with_app(live, user) -> None:
    """An authenticator app besides the person's phone (not the default)."""
    def add(db, svc):
        db.add(Method(user_id=user.id, type="totp", label="Authenticator app", verified_at=svc.clock.now(),
                      is_default=False, totp_secret_encrypted=svc.vault.encrypt(APP_SECRET),
                      created_at=svc.clock.now()))
    run_in(live.app, add)


def failures(live, user) -> int:
    """Wrong passwords and codes counted towards the person's lockout (familiar sources or not)."""
    row = run_in(live.app, lambda db, svc: db.get(User, user.id))
    return row.failed_count + row.unfamiliar_failed_count


# --- each method, and the amr Entra is told ------------------------------------------------------


def test_a_person_whose_default_is_a_text_types_the_texted_code_and_entra_hears_sms(web, live, phones, entra, run,
                                                                                   clock):
    erin = person(run, "erin", role="admin", region="england")
    add_phone(run, erin, MOBILE, types=("sms",))
    asked = Asked(web, live, entra, clock, erin)
    assert asked.started
    assert phones.calls(to=MOBILE) == []
    type_code(web, last_code(phones, MOBILE))
    assert approved_amr(web, entra, asked, clock) == ["sms"]


def test_switching_from_the_call_to_a_text_on_sign_in_another_way_gives_sms(web, live, phones, entra, alice, clock):
    asked = Asked(web, live, entra, clock, alice)
    assert asked.started
    phones.wait_idle()
    assert len(phones.calls(to=ALICE)) == 1 and phones.messages(to=ALICE) == []
    choices = offered(web)
    texting = next(method_id for label, method_id in choices.items() if label.startswith("Text "))
    clock.advance(30)  # past the wait between sends
    switched = post_form(web, "/verify/method", {"method_id": texting}, token_from="/verify/other")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/verify")
    type_code(web, last_code(phones, ALICE))
    assert approved_amr(web, entra, asked, clock) == ["sms"]


def test_an_authenticator_app_code_gives_otp(web, live, phones, entra, bob, totp_bob, clock):
    asked = Asked(web, live, entra, clock, bob)
    assert asked.started
    phones.wait_idle()
    assert phones.calls() == [] and phones.messages() == []  # an app code needs nothing sent
    type_code(web, pyotp_code(totp_bob, clock.now()))
    assert approved_amr(web, entra, asked, clock) == ["otp"]


def test_a_push_approved_with_the_shown_number_gives_swk(web, live, phones, entra, bob, clock, tmp_path):
    device, _ = registered_phone(live, clock, tmp_path)
    asked = Asked(web, live, entra, clock, bob)
    assert asked.started
    page = text(web.get("/verify"))
    number = matched(r'class="app-number-match"><span class="nhsuk-u-visually-hidden">Number to enter: </span>'
                     r'(\d+)<', page).group(1)
    [request] = device.pending()
    assert device.approve(request["id"], number) == {"status": "approved"}
    assert approved_amr(web, entra, asked, clock) == ["swk"]


# --- only what Entra asked for ----------------------------------------------------------------------


def test_when_entra_allows_only_calls_only_calls_are_offered_and_a_text_is_refused(web, live, phones, entra, alice,
                                                                                  clock):
    with_app(live, alice)
    asked = Asked(web, live, entra, clock, alice, claims=CALLS_ONLY)
    assert asked.started
    choices = offered(web)
    assert list(choices) and all(label.startswith("Call ") for label in choices), choices
    sms_id = run_in(live.app, lambda db, svc: db.scalar(
        select(Method.id).where(Method.user_id == alice.id, Method.type == "sms")))
    clock.advance(30)
    refused = post_form(web, "/verify/method", {"method_id": sms_id}, token_from="/verify/other")
    assert refused.status_code == 302 and refused.headers["Location"].endswith("/verify/other")
    phones.wait_idle()
    assert phones.messages(to=ALICE) == []
    answer_call(phones)
    assert approved_amr(web, entra, asked, clock) == ["tel"]


def test_when_entra_allows_only_calls_an_app_code_typed_anyway_is_not_taken(web, live, phones, entra, alice, clock):
    with_app(live, alice)
    asked = Asked(web, live, entra, clock, alice, claims=CALLS_ONLY)
    assert asked.started
    type_code(web, pyotp_code(APP_SECRET, clock.now()))
    # Entra did not ask for `otp`: the app's code approves nothing, and the call still can.
    page = web.get("/verify")
    assert page.status_code == 200 and ANSWER_FORM not in text(page)
    answer_call(phones)
    assert approved_amr(web, entra, asked, clock) == ["tel"]


# --- backups are for this service's own sign-in, never Entra's -----------------------------------


def test_a_recovery_code_typed_on_an_entra_sign_in_is_not_taken(web, live, phones, entra, alice, clock):
    codes = run_in(live.app, lambda db, svc: recovery_codes.generate(db, svc, db.get(User, alice.id)))
    asked = Asked(web, live, entra, clock, alice)
    assert asked.started
    type_code(web, codes[0])
    type_code(web, codes[1], **{"from": "recovery"})
    page = web.get("/verify")
    assert page.status_code == 200 and ANSWER_FORM not in text(page) and "id_token" not in text(page)
    assert web.get("/verify/recovery").headers["Location"].endswith("/verify")  # no recovery form offered
    unused = run_in(live.app, lambda db, svc: db.scalars(
        select(RecoveryCode.used_at).where(RecoveryCode.user_id == alice.id)).all())
    assert unused == [None] * len(codes)
    assert failures(live, alice) == 2  # each counted as a wrong code
    # The call still verifies: only a proved phone answers Entra.
    answer_call(phones)
    assert approved_amr(web, entra, asked, clock) == ["tel"]


def test_a_helpdesk_pass_typed_on_an_entra_sign_in_is_not_taken_though_it_works_on_the_sign_in_page(
        web, live, phones, entra, alice, clock):
    secret = run_in(live.app, lambda db, svc: access_passes.issue(db, svc, "alice"))
    asked = Asked(web, live, entra, clock, alice)
    assert asked.started
    type_code(web, secret)
    page = web.get("/verify")
    assert page.status_code == 200 and ANSWER_FORM not in text(page)
    assert run_in(live.app, lambda db, svc: db.scalar(select(AccessPass.uses))) == 0
    post_form(web, "/sign-in/cancel", token_from="/verify")
    # The same pass on this service's own sign-in page does sign in: it was a working pass.
    browser = live.app.test_client()
    assert password_step(browser, "alice").headers["Location"].endswith("/verify")
    type_code(browser, secret)
    assert browser.get("/verify").status_code == 302 and signed_in(browser)


def test_a_person_with_only_a_helpdesk_pass_is_refused_by_entra_at_once(web, live, phones, entra, bob, clock):
    run_in(live.app, lambda db, svc: access_passes.issue(db, svc, "bob"))
    asked = Asked(web, live, entra, clock, bob)
    assert not asked.started
    assert denied(read_answer(text(asked.response))[1], asked)


# --- the usual rules -----------------------------------------------------------------------------------


def test_too_many_wrong_codes_end_the_entra_sign_in_and_entra_hears_access_denied(web, live, phones, entra, bob,
                                                                                  totp_bob, clock):
    asked = Asked(web, live, entra, clock, bob)
    right = pyotp_code(totp_bob, clock.now())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        type_code(web, wrong)
    assert ANSWER_FORM not in text(web.get("/verify"))  # four wrong: still going
    type_code(web, wrong)
    assert denied(answer_on(web), asked)
    assert failures(live, bob) == 5  # counted towards the person's lockout too


@pytest.mark.parametrize("blocked", ["locked_until", "fraud_blocked_at"])
def test_a_locked_or_fraud_blocked_person_is_refused_at_authorize_and_not_called(web, live, phones, entra, alice,
                                                                                 clock, blocked):
    when = clock.now() + timedelta(hours=1) if blocked == "locked_until" else clock.now()
    run_in(live.app, lambda db, svc: setattr(db.get(User, alice.id), blocked, when))
    asked = Asked(web, live, entra, clock, alice)
    assert not asked.started
    assert denied(read_answer(text(asked.response))[1], asked)
    phones.wait_idle()
    assert phones.calls() == [] and phones.messages() == []


# --- no browser session either way ---------------------------------------------------------------------


def test_the_approval_answers_entra_and_signs_the_browser_in_nowhere_here(web, live, phones, entra, alice, clock):
    asked = Asked(web, live, entra, clock, alice)
    answer_call(phones)
    assert approved_amr(web, entra, asked, clock) == ["tel"]
    account = web.get("/account")
    assert account.status_code == 302 and "/sign-in" in account.headers["Location"]
    assert not signed_in(web)


def test_a_sign_in_on_the_sign_in_page_never_turns_into_an_answer_to_entra(web, live, phones, entra, alice, clock):
    started = password_step(web, "alice")
    assert started.headers["Location"].endswith("/verify")
    answer_call(phones)
    finished = web.get("/verify")
    assert finished.status_code == 302 and ANSWER_FORM not in text(finished)
    assert signed_in(web)
    assert ANSWER_FORM not in text(web.get("/verify"))


def test_another_browser_cannot_take_the_answer(web, live, phones, entra, alice, clock):
    asked = Asked(web, live, entra, clock, alice)
    answer_call(phones)
    other = live.app.test_client()
    elsewhere = other.get("/verify")
    assert elsewhere.status_code == 302 and ANSWER_FORM not in text(elsewhere)
    assert approved_amr(web, entra, asked, clock) == ["tel"]  # still the asking browser's, once


# --- always a second step ---------------------------------------------------------------------------


def test_a_remembered_browser_still_verifies_for_entra(web, live, phones, entra, bob, totp_bob, clock):
    token, _ = run_in(live.app, lambda db, svc: remembered_browsers.remember(
        db, svc, db.get(User, bob.id), "Firefox on Windows", None))
    web.set_cookie("remember", token)
    asked = Asked(web, live, entra, clock, bob)
    assert asked.started
    page = web.get("/verify")
    assert page.status_code == 200 and ANSWER_FORM not in text(page)
    type_code(web, pyotp_code(totp_bob, clock.now()))
    assert approved_amr(web, entra, asked, clock) == ["otp"]
    # The token was a working one: this service's own sign-in page skips the second step with it.
    assert not password_step(web, "bob").headers["Location"].endswith("/verify")


def test_a_person_whose_policy_needs_no_second_step_still_verifies_for_entra(web, live, phones, entra, run, dave,
                                                                              clock):
    add_phone(run, dave, MOBILE, types=("voice", "sms"))
    asked = Asked(web, live, entra, clock, dave)
    assert asked.started
    assert ANSWER_FORM not in text(web.get("/verify"))
    answer_call(phones, MOBILE)
    assert approved_amr(web, entra, asked, clock) == ["tel"]
    # The sign-in page asks dave for nothing more than his password.
    browser = live.app.test_client()
    assert not password_step(browser, "dave").headers["Location"].endswith("/verify")
    assert signed_in(browser)

