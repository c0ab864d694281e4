"""The call page follows the call: calling, ringing, answered ("press # now", or the number to key),
and an ending without approval says what happened and offers the next steps at once.

The moment's name comes from mfa/call_progress.py (tested as a table, no database), and reaches
the page and /verify/status.json from the status callbacks and the call's webhooks (tested through
the stand-in, with a test client as the browser).
"""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest

from mfa import call_progress
from models import Authentication, Challenge, Method, User
from tests.browser_steps import password_step
from tests.conftest import run_in
from tests.helpers import add_phone, matched
from tests.personas import ALICE
from tests.test_webhooks import post_signed

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def call(status="pending", step=None, reason=None, number=None, seconds_left=60) -> Challenge:
    return Challenge(status=status, call_step=step, reason=reason, number_match=number,
                     expires_at=NOW + timedelta(seconds=seconds_left))


PENDING = Authentication(status="pending")


@pytest.mark.parametrize("auth, challenge, name", [
    (PENDING, call("sending"), "calling"),
    (PENDING, call("unknown"), "calling"),  # the provider's answer was lost: it may ring
    (PENDING, call(), "calling"),
    (PENDING, call(step="ringing"), "ringing"),
    (PENDING, call(step="answered"), "answered"),
    (PENDING, call(step="reprompt_wrong_key"), "answered"),  # any step of the call flow after the answer
    (PENDING, call(step="answered", seconds_left=0), "ended"),  # past its time: its last callback was lost
    (PENDING, call("ended", reason="ended"), "ended"),
    (PENDING, call("failed", reason="provider_unavailable"), "failed"),
    (PENDING, None, "not_called"),  # no call was placed (e.g. refused by the spacing rule)
    (Authentication(status="denied", reason="no_answer"), call("denied", reason="no_answer"), "no_answer"),
    (Authentication(status="denied", reason="busy"), call("denied", reason="busy"), "busy"),
    (Authentication(status="denied", reason="machine_answered"), call("denied", reason="machine_answered"),
     "voicemail"),
    (Authentication(status="denied", reason="hung_up"), call("denied", reason="hung_up"), "hung_up"),
    (Authentication(status="denied", reason="call_failed"), call("denied", reason="call_failed"), "failed"),
    (Authentication(status="denied", reason="no_input"), call("denied", reason="no_input"), "no_key"),
    (Authentication(status="denied", reason="wrong_key"), call("denied", reason="wrong_key"), "wrong_key"),
    (Authentication(status="denied", reason="do_not_call"), call("denied", reason="do_not_call"), "ended"),
    (Authentication(status="approved", reason="verified"), call("approved", reason="approved"), "approved"),
])
def test_each_moment_of_a_call_has_one_name(auth, challenge, name):
    assert call_progress.progress(auth, challenge, NOW).name == name


def test_the_number_to_key_is_shown_while_the_call_is_under_way_only():
    assert call_progress.progress(PENDING, call(step="ringing", number="42"), NOW).number_match == "42"
    assert call_progress.progress(PENDING, call(step="answered", number="42"), NOW).number_match == "42"
    ended = call_progress.progress(PENDING, call("denied", reason="no_input", number="42"), NOW)
    assert ended.number_match is None and not ended.under_way


def method(type_: str, lookup: str | None = None, verified: bool = True) -> Method:
    return Method(type=type_, phone_lookup=lookup, label="+44 •••• ••3456", verified_at=NOW if verified else None)


def test_the_next_steps_offer_a_text_to_the_same_phone_first_and_the_app():
    called = method("voice", "same")
    other_text, same_text, app = method("sms", "other"), method("sms", "same"), method("totp")
    user = User(methods=[called, other_text, same_text, app, method("totp", verified=False)])
    steps = call_progress.next_steps(Authentication(user=user, registering=False), called)
    assert (steps.text, steps.app) == (same_text, app)


def test_the_next_steps_offer_only_what_the_person_has():
    called = method("voice", "same")
    user = User(methods=[called, method("sms", "same", verified=False)])
    steps = call_progress.next_steps(Authentication(user=user, registering=False), called)
    assert (steps.text, steps.app) == (None, None)


def test_while_registering_only_the_new_phone_is_offered():
    called = method("voice", "same", verified=False)
    user = User(methods=[called, method("sms", "same"), method("totp")])
    steps = call_progress.next_steps(Authentication(user=user, registering=True), called)
    assert (steps.text, steps.app) == (None, None)


# --- through the stand-in: the status callbacks and webhooks move the page ----------------------


@pytest.fixture
def web(live):
    """The browser: a test client of the app the stand-in calls back."""
    return live.app.test_client()


def calling(web, phones, username="alice") -> str:
    """Sign in with the password; the call to the person's default phone starts. Its CallSid."""
    assert password_step(web, username).status_code == 302
    phones.wait_idle()
    return phones.calls(to=ALICE)[-1].sid


def progress(web) -> str:
    return web.get("/verify/status.json").json["progress"]


def heading(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", matched(r"(?s)<h1[^>]*>(.*?)</h1>", page).group(1)).strip())


def verify_page(web) -> str:
    return web.get("/verify").get_data(as_text=True)


def test_the_page_follows_the_call_from_ringing_to_answered_to_signed_in(web, live, phones, alice):
    sid = calling(web, phones)
    assert progress(web) == "ringing"  # the "ringing" status callback
    page = verify_page(web)
    assert heading(page) == "Your phone is ringing" and 'data-progress="ringing"' in page
    phones.answer(sid)
    phones.wait_idle()
    assert progress(web) == "answered"
    assert heading(verify_page(web)) == "Press # now"
    phones.press(sid, "#")
    phones.wait_idle()
    assert web.get("/verify/status.json").json == {"status": "approved", "reason": "verified",
                                                       "progress": "approved"}
    assert web.get("/verify").headers["Location"].endswith("/account")


def test_only_the_ringing_and_completed_callbacks_are_asked_for(web, live, phones, alice):
    sid = calling(web, phones)
    phones.answer(sid)
    phones.hang_up(sid)
    phones.wait_idle()
    assert [status for status, _ in phones.call(sid).callbacks] == ["ringing", "completed"]


def test_a_late_ringing_callback_never_moves_the_call_back(web, live, phones, alice):
    sid = calling(web, phones)
    phones.answer(sid)
    phones.wait_idle()
    status_url = phones.call(sid).params["StatusCallback"]
    for _ in range(2):  # late, and repeated
        assert post_signed(status_url, {"CallSid": sid, "CallStatus": "ringing"}).status_code == 204
    assert progress(web) == "answered"


def add_app(live, user) -> None:
    """A verified authenticator app (its secret is never used here)."""
    def add(db, svc):
        db.add(Method(user_id=user.id, type="totp", label="Authenticator app", verified_at=svc.clock.now(),
                      totp_secret_encrypted=svc.vault.encrypt("JBSWY3DPEHPK3PXP"), created_at=svc.clock.now()))

    run_in(live.app, add)


def _nothing(phones, sid):
    pass  # the number's behaviour (busy, no answer...) ends the call


def _no_key(phones, sid):
    phones.answer(sid)
    phones.lapse(sid)
    phones.lapse(sid)


def _wrong_key(phones, sid):
    phones.answer(sid)
    phones.press(sid, "5")
    phones.press(sid, "5")


def _hang_up(phones, sid):
    phones.answer(sid)
    phones.hang_up(sid)


@pytest.mark.parametrize("behaviour, act, name, sentence", [
    ("busy", _nothing, "busy", "The line was busy."),
    ("no-answer", _nothing, "no_answer", "The call was not answered."),
    ("failed", _nothing, "failed", "The call could not be connected."),
    ("machine", _nothing, "voicemail", "The call went to voicemail."),
    ("ring", _hang_up, "hung_up", "The call ended before your sign-in was verified."),
    ("ring", _no_key, "no_key", "No key was pressed during the call."),
    ("ring", _wrong_key, "wrong_key", "A key other than the one asked for was pressed."),
])
def test_an_ending_says_what_happened_and_offers_the_next_steps_at_once(web, live, phones, alice, clock,
                                                                          behaviour, act, name, sentence):
    live.app.extensions["mfa"].services.telephony.machine_detection = behaviour == "machine"
    phones.set_behaviour(ALICE, behaviour)
    add_app(live, alice)
    sid = calling(web, phones)
    act(phones, sid)
    phones.wait_idle()
    assert progress(web) == name
    page = verify_page(web)
    assert heading(page) == "That call did not verify you"
    assert sentence in page
    for offer in ("Call me again", "Text me a code instead", "Use my authenticator app", "Sign in another way"):
        assert offer in page, offer


def test_without_a_text_method_or_an_app_only_calling_again_is_offered(web, live, phones, run, bob):
    add_phone(run, bob, ALICE, types=("voice",))
    phones.set_behaviour(ALICE, "busy")
    calling(web, phones, "bob")
    page = verify_page(web)
    assert "Call me again" in page
    assert "Text me a code instead" not in page and "Use my authenticator app" not in page


def test_the_offered_text_starts_at_once_on_the_same_phone(web, live, phones, alice, clock):
    phones.set_behaviour(ALICE, "busy")
    calling(web, phones)
    page = verify_page(web)
    text_method = matched(r'name="method_id" value="([0-9a-f]+)">\s*<button[^>]*>Text me a code instead', page)
    clock.advance(30)  # the spacing between sends
    token = matched(r'name="csrf_token" value="([^"]+)"', page).group(1)
    web.post("/verify/method", data={"csrf_token": token, "method_id": text_method.group(1)})
    phones.wait_idle()
    assert len(phones.messages(to=ALICE)) == 1
    assert "Enter the code we texted you" in verify_page(web)


def test_the_page_says_it_moves_on_by_itself_only_when_its_script_runs(web, live, phones, alice):
    calling(web, phones)
    page = verify_page(web)
    assert re.search(r"<p data-js-only hidden>This page moves on by itself", page)
    assert "Check again" in page  # the way on without the script


@pytest.fixture
def number_mode(app_config):
    app_config["CALL_APPROVAL"] = "number"  # (list before live)


def test_in_number_mode_the_page_shows_the_number_to_key_in_large(number_mode, web, live, phones, alice):
    sid = calling(web, phones)
    number = matched(r'(?s)class="app-number-match">.*?(\d\d)</p>', verify_page(web)).group(1)
    phones.answer(sid)
    phones.wait_idle()
    page = verify_page(web)
    assert heading(page) == f"Enter {number} on your phone's keypad"
    phones.press(sid, number)
    phones.wait_idle()
    assert progress(web) == "approved"


def test_an_older_call_answered_after_call_me_again_is_the_one_the_page_shows(number_mode, web, live, phones,
                                                                               alice, clock):
    """The first call's answer arrives after "Call me again" placed a second one (it was already in
    flight, or could not be hung up): that call is revived and asks for its own number, so the page
    must show that number, not the replaced call's (else the person keys the wrong one, twice)."""
    first = calling(web, phones)
    answer_first = phones.call(first).params["Url"]
    page = verify_page(web)
    first_number = matched(r'(?s)class="app-number-match">.*?(\d\d)</p>', page).group(1)
    clock.advance(31)  # past the spacing between calls
    web.post("/verify/method", data={"csrf_token": matched(r'name="csrf_token" value="([^"]+)"', page).group(1),
                                     "method_id": matched(r'name="method_id" value="([^"]+)"', page).group(1)})
    phones.wait_idle()
    assert len(phones.calls(to=ALICE)) == 2
    assert post_signed(answer_first, {"CallSid": first, "CallStatus": "in-progress"}).status_code == 200
    assert progress(web) == "answered"
    assert heading(verify_page(web)) == f"Enter {first_number} on your phone's keypad"
