"""Small rules: at most 10 remembered browsers a person (and `users show` lists them), a page
sign-in that does not start with a call the do-not-call list refuses, and a new app password
shown only within 10 minutes of being made."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from mfa import methods, remembered_browsers
from mfa.phones import mask
from mfa.remembered_browsers import MAX_PER_PERSON
from models import AuditEvent, BrowserSession, DoNotCall, Method, RememberedBrowser, User
from tests.browser_steps import password_step, post_form
from tests.helpers import add_phone, last_code
from tests.personas import MOBILE

DAYS = 30
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "REMEMBER_BROWSER_DAYS": str(DAYS)}


def remember(run, user, label: str) -> str:
    """Remember a browser for `user` (as the remember-browser page does); its token."""
    token, _ = run(lambda db, svc: remembered_browsers.remember(db, svc, db.get(User, user.id), label, None))
    return token


def skips(run, user, token: str) -> bool:
    return run(lambda db, svc: remembered_browsers.skips_second_step(db, svc, db.get(User, user.id), token)) \
        is not None


# --- remembered browsers: at most MAX_PER_PERSON ----------------------------------------------------------


def test_remembering_an_eleventh_browser_forgets_the_oldest_and_says_so(run, bob, clock):
    tokens = []
    for i in range(MAX_PER_PERSON):
        tokens.append(remember(run, bob, f"Browser {i}"))
        clock.advance(minutes=1)
    oldest = run(lambda db, svc: db.scalar(select(RememberedBrowser.id).where(RememberedBrowser.label == "Browser 0")))

    tokens.append(remember(run, bob, "Browser 10"))

    labels = run(lambda db, svc: set(db.scalars(select(RememberedBrowser.label)
                                                 .where(RememberedBrowser.user_id == bob.id))))
    assert labels == {f"Browser {i}" for i in range(1, MAX_PER_PERSON + 1)}
    assert not skips(run, bob, tokens[0])  # the oldest no longer skips the second step
    assert all(skips(run, bob, token) for token in tokens[1:])
    events = run(lambda db, svc: [(e.event, e.reason, e.detail) for e in db.scalars(
        select(AuditEvent).where(AuditEvent.event == "remembered_browser_forgotten"))])
    assert events == [("remembered_browser_forgotten", "too_many_browsers",
                       f"{oldest}: more than {MAX_PER_PERSON} remembered")]


def test_the_cap_counts_each_person_separately(run, bob, carol):
    for i in range(MAX_PER_PERSON):
        remember(run, bob, f"bob {i}")
    remember(run, carol, "carol's")
    count = run(lambda db, svc: len(list(db.scalars(select(RememberedBrowser)))))
    assert count == MAX_PER_PERSON + 1


def test_users_show_lists_remembered_browsers_without_their_tokens(app, run, bob, clock):
    cli = app.test_cli_runner()
    assert "remembered browsers: 0" in cli.invoke(args=["users", "show", "bob"]).output
    first = remember(run, bob, "Firefox on Windows")
    clock.advance(hours=2)
    second = remember(run, bob, "Safari on iPhone")

    shown = cli.invoke(args=["users", "show", "bob"])

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    at = lines.index("remembered browsers: 2")
    ends = clock.now() + timedelta(days=DAYS)
    assert lines[at + 1:at + 3] == [  # newest first, each with when it stops skipping the second step
        f"  Safari on iPhone  (until {ends:%Y-%m-%d %H:%M} UTC)",
        f"  Firefox on Windows  (until {ends - timedelta(hours=2):%Y-%m-%d %H:%M} UTC)",
    ]
    assert first not in shown.output and second not in shown.output


# --- the method a page sign-in starts with --------------------------------------------------------------


def on_do_not_call_list(run, number: str) -> None:
    """Whoever answered a call to `number` pressed 9."""
    run(lambda db, svc: db.add(DoNotCall(phone_lookup=svc.vault.keyed_hash(number), label=mask(number),
                                         created_at=svc.clock.now())))


def add_app(run, user) -> None:
    def add(db, svc):
        db.add(Method(user_id=user.id, type="totp", label="Authenticator app", verified_at=svc.clock.now(),
                      is_default=False, totp_secret_encrypted=svc.vault.encrypt(SECRET),
                      created_at=svc.clock.now()))
    run(add)


def starting_type(run, user) -> str:
    return run(lambda db, svc: methods.method_to_start(db, svc, db.get(User, user.id)).type)


def test_the_default_call_starts_while_its_number_may_be_called(run, bob, clock):
    add_phone(run, bob, MOBILE, types=("voice",))  # the default
    clock.advance(seconds=1)
    add_app(run, bob)
    assert starting_type(run, bob) == "voice"


def test_a_default_call_to_a_number_that_pressed_9_gives_way_to_the_app(client, run, bob, clock):
    add_phone(run, bob, MOBILE, types=("voice",))  # the default
    clock.advance(seconds=1)
    add_app(run, bob)
    on_do_not_call_list(run, MOBILE)
    assert starting_type(run, bob) == "totp"

    assert password_step(client, "bob").headers["Location"].endswith("/verify")
    page = client.get("/verify").get_data(as_text=True)
    assert "Enter the code from your authenticator app" in page  # not a refused call
    assert "do not call" not in page.lower()


def test_a_default_call_to_a_number_that_pressed_9_gives_way_to_a_text(live, phones, run, bob):
    add_phone(run, bob, MOBILE, types=("voice", "sms"))  # the call is the default
    on_do_not_call_list(run, MOBILE)
    assert starting_type(run, bob) == "sms"  # a text proves the number, which lifts the refusal

    client = live.app.test_client()  # the stand-in as its Twilio
    password_step(client, "bob")
    assert "Enter the code we texted you" in client.get("/verify").get_data(as_text=True)
    assert re.fullmatch(r"\d{6}", last_code(phones, MOBILE))
    assert phones.calls(to=MOBILE) == []


def test_with_nothing_else_to_offer_the_default_stays(run, bob):
    add_phone(run, bob, MOBILE, types=("voice",))
    on_do_not_call_list(run, MOBILE)
    assert starting_type(run, bob) == "voice"  # its refusal then says why, and offers other ways


# --- a new app password: shown only within 10 minutes --------------------------------------------------


def create_app_password(client, name: str = "Outlook at home"):
    assert password_step(client, "dave").status_code == 302  # dave's policy asks no second step
    made = post_form(client, "/app-passwords", {"name": name}, token_from="/app-passwords")
    assert made.status_code == 303 and made.headers["Location"].endswith("/app-passwords/created")


def test_a_new_app_password_is_shown_within_ten_minutes(client, dave, clock):
    create_app_password(client)
    clock.advance(minutes=9, seconds=59)
    page = client.get("/app-passwords/created")
    assert page.status_code == 200
    assert re.search(r'id="app-password">[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}<', page.get_data(as_text=True))


def test_a_new_app_password_is_not_shown_after_ten_minutes(client, run, dave, clock):
    create_app_password(client, "Outlook at home")
    clock.advance(minutes=10)

    late = client.get("/app-passwords/created")

    assert late.status_code == 302 and late.headers["Location"].endswith("/app-passwords")
    page = client.get(late.headers["Location"]).get_data(as_text=True)
    assert 'id="app-password"' not in page
    assert "can no longer be shown" in page and "revoke it and create another" in page
    assert "Outlook at home" in page  # the one to revoke is still listed
    # Dropped from the session, not kept for later: it is never shown again.
    again = client.get("/app-passwords/created")
    assert again.status_code == 302
    assert "can no longer be shown" not in client.get("/app-passwords").get_data(as_text=True)


def test_a_new_app_password_left_unseen_leaves_the_session_at_the_next_page_after_ten_minutes(client, run, dave,
                                                                                            clock):
    """Its page never opened: the encrypted password is not kept for the session's remaining hours."""
    create_app_password(client)

    def stored_sessions(db, svc) -> list[str]:
        return [row.data for row in db.scalars(select(BrowserSession).where(BrowserSession.user_id == dave.id))]

    assert any("app_password_created" in data for data in run(stored_sessions))
    clock.advance(minutes=9)
    client.get("/account")
    assert any("app_password_created" in data for data in run(stored_sessions))  # still within its time
    clock.advance(minutes=1)
    client.get("/account")
    assert not any("app_password_created" in data for data in run(stored_sessions))
