"""Cancel, or signing out, ends the sign-in on the server (mfa/cancellation.py).

Before, Cancel only made the browser forget its flow: the sign-in stayed open, and a `#` pressed on
its call approved a sign-in nobody was waiting for. Now nothing can approve it, but a sign-in call
still rings: whoever pressed Cancel may have the password, and the owner must still be able to report
it with 0#. A set-up call (registration) offers no report, so it is hung up. The domain tests ring through the stand-in
over real HTTP; the page tests press the buttons in Chromium.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from mfa import authentications, calls, cancellation, challenges, phone_registration
from mfa.calls import end_calls
from mfa.unit_of_work import Transactions, use_case
from models import AuditEvent, Authentication, Challenge, Method, User
from tests.browser_steps import post_form
from tests.conftest import run_in
from tests.fake_telephony import FakeTelephony, use_fake
from tests.helpers import add_phone, last_code, ring, start_sign_in, state
from tests.personas import ALICE, MOBILE, PASSWORD
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page: fixtures used here)
    CHROMIUM, browser, chromium, page, shot, sign_in)
from tests.test_races import all_at_once
from tests.test_voice_calls import heard

CANCELLED = ("denied", "cancelled_by_person")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")


def cancel(live, auth_id: object) -> list[str]:
    """The domain use case, committed as an edge runs it; the calls it asks to hang up."""
    return run_in(live.app, lambda db, svc: cancellation.cancel(db, svc, auth_id))


def outcome(live, auth: dict) -> tuple[str, str]:
    now = state(live, auth)
    return now["status"], now["reason"]


def audited(live, user_id: str) -> list[tuple[str, str, str | None]]:
    return run_in(live.app, lambda db, svc: [(e.event, e.outcome, e.reason) for e in db.scalars(
        select(AuditEvent).where(AuditEvent.user_id == user_id, AuditEvent.event == "sign_in"))])


def challenges_of(live, auth_id: str) -> list[tuple[str, str | None]]:
    return run_in(live.app, lambda db, svc: [(c.status, c.reason) for c in db.scalars(
        select(Challenge).where(Challenge.authentication_id == auth_id))])


def latest_sign_in(live, user, purpose: str = "sign_in") -> tuple[str, str | None]:
    """The person's newest sign-in (or change), as stored: (status, reason)."""
    def read(db, svc):
        auth = db.scalars(select(Authentication).where(Authentication.user_id == user.id,
                                                       Authentication.purpose == purpose)
                          .order_by(Authentication.created_at.desc())).first()
        return auth.status, auth.reason

    return run_in(live.app, read)


# --- the domain ------------------------------------------------------------------------------


def test_cancel_denies_the_sign_in_for_good_and_leaves_its_call_ringing(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    assert cancel(live, auth["id"]) == []  # nothing to hang up: the owner may still report it
    assert outcome(live, auth) == CANCELLED
    assert challenges_of(live, auth["id"]) == [("pending", None)]
    assert ("sign_in", "cancelled", "cancelled_by_person") in audited(live, alice.id)
    assert phones.call(sid).status == "ringing"
    again = live.api.post(f"/authentications/{auth['id']}/challenges", {"method_id": auth["methods"][0]["id"]})
    assert again.status_code == 409  # final: no "call me again" on a cancelled sign-in


def test_a_second_cancel_changes_nothing(live, phones, alice, clock):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    ring(live, phones, auth)
    cancel(live, auth["id"])
    ended_at = run_in(live.app, lambda db, svc: db.get(Authentication, auth["id"]).completed_at)
    clock.advance(5)
    assert cancel(live, auth["id"]) == []
    assert outcome(live, auth) == CANCELLED
    assert run_in(live.app, lambda db, svc: db.get(Authentication, auth["id"]).completed_at) == ended_at
    assert [e for e in audited(live, alice.id) if e[1] == "cancelled"] == [("sign_in", "cancelled",
                                                                             "cancelled_by_person")]


def test_an_approved_sign_in_is_not_touched(live, phones, alice, dave):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    assert cancel(live, auth["id"]) == []
    assert outcome(live, auth) == ("approved", "verified")
    no_mfa = start_sign_in(live.api, "dave", expect="approved")
    assert cancel(live, no_mfa["id"]) == []
    assert outcome(live, no_mfa) == ("approved", "mfa_not_required")
    assert not [e for e in audited(live, alice.id) + audited(live, dave.id) if e[1] == "cancelled"]


def test_hash_pressed_on_the_call_after_the_cancel_approves_nothing(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.wait_idle()
    cancel(live, auth["id"])
    phones.press(sid, "#")
    phones.wait_idle()
    assert outcome(live, auth) == CANCELLED
    assert heard(phones, sid).endswith("goodbye") and "verified" not in heard(phones, sid)
    assert challenges_of(live, auth["id"]) == [("ended", "cancelled_by_person")]  # the call's ending changed nothing
    assert not [e for e in audited(live, alice.id) if e[1] == "approved"]


def test_a_sign_in_whose_call_failed_can_be_cancelled_too(live, phones, alice):
    """A busy line leaves the sign-in able to go on (another call, a text): Cancel ends that as well."""
    phones.set_behaviour(ALICE, "busy")
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    ring(live, phones, auth)
    assert outcome(live, auth) == ("denied", "busy")
    assert cancel(live, auth["id"]) == []  # nothing rings any more
    assert outcome(live, auth) == CANCELLED


def test_an_expired_or_unknown_sign_in_is_left_as_it_is(live, phones, alice, clock):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    clock.advance(minutes=10)
    assert cancel(live, auth["id"]) == []
    assert outcome(live, auth) == ("expired", "timed_out")
    assert cancel(live, "0" * 32) == [] and cancel(live, None) == []


def test_the_owner_can_still_report_a_cancelled_sign_in_with_0_hash(live, phones, alice):
    """Someone with alice's password signs in, sees the call answered on the page's status, and presses
    Cancel to hide it: alice's `0#` still blocks the account."""
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.wait_idle()
    cancel(live, auth["id"])
    phones.press(sid, "0#")
    phones.wait_idle()
    assert "fraud_recorded" in heard(phones, sid)
    assert run_in(live.app, lambda db, svc: db.get(User, alice.id).fraud_blocked_at) is not None
    assert outcome(live, auth) == CANCELLED  # ended already; the report blocks the person


def test_a_cancelled_sign_ins_call_answered_later_still_offers_the_report(live, phones, alice):
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    cancel(live, auth["id"])
    phones.answer(sid)
    phones.wait_idle()
    assert "report_fraud" in heard(phones, sid)  # the normal first question, with "press 0 then hash"
    phones.press(sid, "9")
    phones.wait_idle()
    assert heard(phones, sid).endswith("do_not_call")


def test_a_set_up_calls_sid_is_returned_to_be_hung_up(live, phones, run, bob):
    """Registration: no fraud report on a set-up call, so Cancel hangs it up (through the provider)."""
    auth_id = run_in(live.app, lambda db, svc: authentications.start(db, svc, "bob", PASSWORD, None).id)
    svc = live.app.extensions["mfa"].services
    with live.app.extensions["mfa"].sessions() as s:
        phone_registration.register_phone(Transactions(s), svc, auth_id, MOBILE, "mobile", "voice", None)
    phones.wait_idle()
    sid = phones.calls(to=MOBILE)[-1].sid
    returned = cancel(live, auth_id)
    assert returned == [sid]
    end_calls(live.app.extensions["mfa"].services, returned)
    phones.wait_idle()
    assert phones.call(sid).status in ("canceled", "completed")


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="concurrent row locks need PostgreSQL")
def test_a_cancel_and_a_hash_key_at_the_same_moment_never_deadlock_and_one_wins(runtime, run, clock, alice):
    """Whichever comes first decides, and the other changes nothing; neither waits for a row the other
    holds in the opposite order (mfa/locks.py)."""
    svc = use_fake(runtime, FakeTelephony())
    voice = run(lambda db, svc: db.scalars(select(Method.id).where(Method.user_id == alice.id,
                                                                   Method.type == "voice")).one())
    endings = set()
    for _ in range(6):
        auth_id = start_sign_in(run, "alice")["id"]
        with runtime.sessions() as s:
            challenge = challenges.start_challenge(Transactions(s), svc, auth_id, voice, "127.0.0.1")
            ids = (challenge.id, challenge.provider_sid)

        def press(session, ids=ids):
            with use_case(session):
                calls.keys_pressed(session, svc, ids[0], ids[1], "#")

        def give_up(session, auth_id=auth_id):
            with use_case(session):
                cancellation.cancel(session, svc, auth_id)

        assert all_at_once(runtime, [press, give_up]) == ["ok", "ok"]

        def read(db, svc, auth_id=auth_id):
            auth = db.get(Authentication, auth_id)
            call = db.scalars(select(Challenge).where(Challenge.authentication_id == auth_id)).one()
            return (auth.status, auth.reason, call.status)

        ending = run(read)
        # The call's challenge may say "approved" for a `#` that lost the sign-in to the cancel: the
        # caller hears goodbye, and only the sign-in's status ever approves anything.
        assert ending in {("approved", "verified", "approved"), ("denied", "cancelled_by_person", "ended"),
                          ("denied", "cancelled_by_person", "approved")}
        endings.add(ending[0])
        clock.advance(30)
    assert endings  # (which one wins each time is up to the database)


# --- the pages: Cancel and Sign out ---------------------------------------------------------


@pytest.fixture
def web(live):
    """A browser without JavaScript: a test client of the app the stand-in calls back."""
    return live.app.test_client()


def test_cancel_on_an_answered_call_leaves_it_up_and_0_hash_still_blocks(web, live, phones, run, alice):
    assert post_form(web, "/sign-in", {"username": "alice", "password": PASSWORD}
                     ).status_code == 302
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    phones.answer(sid)
    phones.wait_idle()
    response = post_form(web, "/sign-in/cancel", token_from="/verify")
    assert response.headers["Location"].endswith("/sign-in")
    assert latest_sign_in(live, alice) == CANCELLED
    phones.press(sid, "0#")
    phones.wait_idle()
    assert run(lambda db, svc: db.get(User, alice.id).fraud_blocked_at) is not None


def test_cancelling_a_phone_change_ends_its_sign_in(web, live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("sms", "voice"))
    post_form(web, "/sign-in", {"username": "bob", "password": PASSWORD})
    post_form(web, "/verify/code", {"code": last_code(phones)}, token_from="/verify")
    assert web.get("/verify").headers["Location"].endswith("/account")  # signed in: a change may begin
    post_form(web, "/security-info/phone/mobile", token_from="/security-info")
    sent = post_form(web, "/register/phone/mobile", {"number": "07400 654321", "delivery": "sms"},
                     token_from="/register/phone/mobile")
    assert sent.headers["Location"].endswith("/verify"), sent.get_data(as_text=True)
    assert latest_sign_in(live, bob, "change") == ("pending", None)
    response = post_form(web, "/sign-in/cancel", token_from="/verify")
    assert response.headers["Location"].endswith("/security-info")
    assert latest_sign_in(live, bob, "change") == CANCELLED


@needs_chromium
def test_cancel_on_the_call_page_says_so_and_the_call_approves_nothing(page, live, phones, alice):  # noqa: F811
    sign_in(page, "alice")
    page.get_by_role("heading", name="Answer the call").or_(
        page.get_by_role("heading", name="Your phone is ringing")).wait_for()
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    assert phones.call(sid).status == "ringing"
    page.get_by_role("button", name="Cancel signing in").click()
    page.get_by_text("You cancelled signing in. You have not been signed in. If we are still calling you, "
                     "you can ignore the call.").wait_for()
    assert page.get_by_role("heading", name="Sign in").is_visible()
    shot(page, "cancelled-sign-in")
    assert latest_sign_in(live, alice) == CANCELLED
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    assert heard(phones, sid).endswith("goodbye")
    assert latest_sign_in(live, alice) == CANCELLED


@needs_chromium
def test_signing_out_during_the_first_registration_hangs_up_the_set_up_call(page, live, phones, bob):  # noqa: F811 (the fixture)
    sign_in(page, "bob")
    page.get_by_label("Authentication phone").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_label("Call me").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/verify")
    phones.wait_idle()
    sid = phones.calls(to=MOBILE)[-1].sid
    assert phones.call(sid).status == "ringing"
    page.get_by_role("banner").get_by_role("button", name="Sign out").click()
    page.get_by_text("You have signed out.").wait_for()
    phones.wait_idle()
    assert phones.call(sid).status == "canceled"
    assert latest_sign_in(live, bob) == CANCELLED


def test_the_domain_function_takes_a_loaded_sign_in_too(run, bob):
    auth = run(lambda db, svc: authentications.start(db, svc, "bob", PASSWORD, None))
    assert auth.status == "registration_required"
    assert run(lambda db, svc: cancellation.cancel(db, svc, db.get(Authentication, auth.id))) == []
    assert run(lambda db, svc: (db.get(Authentication, auth.id).status, db.get(Authentication, auth.id).reason)
               ) == CANCELLED


def test_sign_out_everywhere_ends_every_page_sign_in_under_way_but_not_an_applications(live, phones, alice):
    """Someone with the password may be at the second step in another browser: "sign out everywhere"
    ends that sign-in too. A relying application's own sign-in (through the API) goes on."""
    page_sign_in = run_in(live.app, lambda db, svc: authentications.start(db, svc, "alice", PASSWORD, None).id)
    api_sign_in = start_sign_in(live.api, "alice", expect="mfa_required")

    def sign_out_everywhere(db, svc):
        return cancellation.sign_out_everywhere(db, svc, db.get(Authentication, page_sign_in).user, None)

    assert run_in(live.app, sign_out_everywhere) == []  # nothing rang: nothing to hang up
    stored = run_in(live.app, lambda db, svc: (db.get(Authentication, page_sign_in).status,
                                               db.get(Authentication, page_sign_in).reason))
    assert stored == CANCELLED
    assert state(live, api_sign_in)["status"] == "mfa_required"
