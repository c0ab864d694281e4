"""Smart lockout (mfa/lockout.py, docs/lockout.md): failures from sources the person never
completed a sign-in from lock only those sources; app passwords count apart; lockouts grow.

A source becomes familiar only through a sign-in completed on the pages: `home_bob` is bob with
his app (enrolled through the API, which makes nothing familiar) who has signed in on the page
from HOME. Sign-ins through the API are a relying application's and always unfamiliar.
Attackers come from other addresses (REMOTE_ADDR per request).
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mfa import app_passwords, authentications, limits, lockout
from mfa.unit_of_work import use_case
from models import AuditEvent, FamiliarSource, User
from tests.browser_steps import post_form, signed_in
from tests.conftest import PASSWORD
from tests.helpers import pyotp_code
from tests.test_races import all_at_once, postgres_only

HOME = "127.0.0.1"  # the test client's own address: where bob enrolled his app
ATTACKER = "203.0.113.9"
RELYING = "198.51.100.20"  # a relying application's server, calling the JSON API
WRONG = "not the password"
LIFTED = "1000000"


@pytest.fixture
def app_config(app_config):
    """The rate limits (web/rate_limits.py) would answer 429 long before a lockout: lifted here,
    where the lockout is what is under test."""
    return {**app_config, **dict.fromkeys(
        ("RATE_LIMIT_SIGN_INS_PER_PERSON", "RATE_LIMIT_API_SIGN_INS", "RATE_LIMIT_APP_PASSWORD_CHECKS",
         "RATE_LIMIT_API_REQUESTS", "RATE_LIMIT_PAGE_SIGN_INS", "RATE_LIMIT_PAGE_FORMS"), LIFTED)}


@pytest.fixture
def threshold(runtime):
    return lockout.threshold(runtime.services)


@pytest.fixture
def app_password(run, bob):
    return run(lambda db, svc: app_passwords.create(db, svc, db.get(User, bob.id), "Outlook 2013"))[1]


def password_from(api, address, password=WRONG, username="bob"):
    return api.post("/authentications", {"username": username, "password": password},
                    environ_base={"REMOTE_ADDR": address})


def mail_login(api, app_password, username="bob"):
    return api.post("/app-passwords/verify", {"username": username, "app_password": app_password})


def page_password(app, address, password=WRONG, username="bob", browser=None):
    """The password step on the sign-in page from `address`: 401, 423, or 302 on to the next step."""
    browser = browser or app.test_client()
    return post_form(browser, "/sign-in", {"username": username, "password": password},
                     environ_base={"REMOTE_ADDR": address}).status_code


def page_sign_in_with_app(app, secret, clock, address=HOME, browser=None):
    """A whole sign-in on the pages from `address`, with the app's code: signed in or not."""
    browser = browser or app.test_client()
    assert page_password(app, address, PASSWORD, browser=browser) == 302
    post_form(browser, "/verify/code", {"code": pyotp_code(secret, clock.now())}, token_from="/verify",
              environ_base={"REMOTE_ADDR": address})
    browser.get("/verify", environ_base={"REMOTE_ADDR": address})  # the approval becomes a session
    clock.advance(30)  # the next sign-in's code is another time step's
    return signed_in(browser)


@pytest.fixture
def home_bob(app, totp_bob, clock):
    """bob, who has signed in on the page from HOME with his app: HOME is familiar to him."""
    assert page_sign_in_with_app(app, totp_bob, clock)
    return totp_bob


def sign_in_with_app(api, secret, clock, address=HOME):
    started = password_from(api, address, PASSWORD)
    assert started.status_code == 201, started.json
    done = api.post(f"/authentications/{started.json['id']}/checks", {"code": pyotp_code(secret, clock.now())})
    clock.advance(30)  # the next sign-in's code is another time step's
    return done.json["status"]


def stored(run, user_id):
    return run(lambda db, svc: db.get(User, user_id))


def events(run, event, outcome=None):
    where = [AuditEvent.event == event] + ([AuditEvent.outcome == outcome] if outcome else [])
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(AuditEvent).where(*where)))


# --- the test: an attacker elsewhere locks out neither home nor mail ------------------


def test_an_attackers_failures_from_unfamiliar_addresses_lock_neither_the_familiar_address_nor_app_passwords(
        app, api, run, bob, home_bob, clock, app_password, threshold):
    answers = [page_password(app, f"203.0.113.{n % 3 + 1}") for n in range(threshold)]
    assert answers == [401] * (threshold - 1) + [423]
    # Every unfamiliar address is refused now, the right password too, and says nothing of it.
    assert page_password(app, ATTACKER, PASSWORD) == 423
    assert page_password(app, "2001:db8::1", PASSWORD) == 423
    assert password_from(api, HOME, PASSWORD).status_code == 423  # through the API: never familiar
    # bob at home signs in as ever, and his mail client keeps working.
    assert page_sign_in_with_app(app, home_bob, clock)
    assert mail_login(api, app_password).json == {"valid": True}
    user = stored(run, bob.id)
    assert user.unfamiliar_locked_until == clock.now() - timedelta(seconds=30) + lockout.BASE_DURATION
    assert user.locked_until is None and not user.is_locked(clock.now())


def test_an_unfamiliar_lockout_leaves_the_persons_browser_sessions_alone_and_a_familiar_one_ends_them(
        app, api, run, bob, home_bob, threshold):
    from mfa import browser_sessions
    from models import BrowserSession

    run(lambda db, svc: browser_sessions.create(db, svc, {}, user_id=bob.id, signed_in_at=svc.clock.now()))

    def sessions():
        return run(lambda db, svc: db.scalar(select(func.count()).select_from(BrowserSession)
                                             .where(BrowserSession.user_id == bob.id)))

    before = sessions()  # this one, and home_bob's page sign-in
    for _ in range(threshold):
        password_from(api, ATTACKER)
    assert sessions() == before == 2  # ending them is what an attacker elsewhere would want
    for _ in range(threshold):
        page_password(app, HOME)
    assert sessions() == 0  # guessing from where bob signs in: every browser signs in again


def test_failures_from_the_familiar_address_lock_every_address(app, api, bob, home_bob, threshold):
    answers = [page_password(app, HOME) for _ in range(threshold)]
    assert answers == [401] * (threshold - 1) + [423]
    assert page_password(app, HOME, PASSWORD) == 423
    assert page_password(app, ATTACKER, PASSWORD) == 423
    assert password_from(api, RELYING, PASSWORD).status_code == 423


def test_a_sign_in_under_way_from_an_unfamiliar_address_ends_at_its_next_wrong_code_once_that_address_is_locked(
        api, bob, totp_bob, clock, threshold):
    under_way = password_from(api, ATTACKER, PASSWORD).json["id"]
    for _ in range(threshold):
        password_from(api, "203.0.113.77")
    wrong = f"{(int(pyotp_code(totp_bob, clock.now())) + 1) % 1_000_000:06d}"
    refused = api.post(f"/authentications/{under_way}/checks", {"code": wrong}, environ_base={"REMOTE_ADDR": ATTACKER})
    assert refused.status_code == 423
    assert api.get(f"/authentications/{under_way}").json["status"] == "locked"


# --- app passwords and sign-ins never lock each other ---------------------------------------


def test_app_password_attacks_never_lock_the_web_sign_in(api, run, bob, totp_bob, clock, app_password, runtime):
    most = lockout.app_password_threshold(runtime.services)
    answers = [mail_login(api, "abcd efgh ijkl mnop").status_code for _ in range(most)]
    assert answers == [401] * most
    assert events(run, "app_passwords_locked") == 1
    assert sign_in_with_app(api, totp_bob, clock) == "approved"  # the sign-in is not locked
    user = stored(run, bob.id)
    assert (user.failed_count, user.unfamiliar_failed_count, user.locked_until, user.lockouts) == (0, 0, None, 0)


def test_anyone_who_knows_the_username_cannot_lock_the_persons_mail_out(app, api, run, bob, app_password, runtime):
    """Twenty wrong app passwords record (and audit) an app-password lock, but 75 random bits are
    never guessed online: the right app password from the mail server still works meanwhile."""
    most = lockout.app_password_threshold(runtime.services)
    assert [mail_login(api, "abcd efgh ijkl mnop").status_code for _ in range(most + 5)] == [401] * (most + 5)
    assert events(run, "app_passwords_locked") == 1
    assert stored(run, bob.id).app_password_locked_until is not None
    shown = app.test_cli_runner().invoke(args=["users", "show", "bob"])
    assert "app passwords locked until" in shown.output, shown.output
    assert events(run, "app_password_check", "failed") == most + 5  # the five during the lock: refused, uncounted
    assert stored(run, bob.id).app_password_failed_count == 0
    answer = mail_login(api, app_password)
    assert answer.status_code == 200 and answer.json == {"valid": True}
    assert stored(run, bob.id).app_password_locked_until is not None  # the record stays until it ends or unlock


def test_a_sign_in_lockout_never_locks_app_passwords(app, api, run, bob, home_bob, app_password, threshold):
    for _ in range(threshold):
        page_password(app, HOME)  # the familiar lockout: the strongest there is, short of a fraud block
    assert page_password(app, HOME, PASSWORD) == 423
    assert stored(run, bob.id).locked_until is not None
    assert mail_login(api, app_password).json == {"valid": True}
    assert stored(run, bob.id).app_password_failed_count == 0


def test_a_fraud_block_refuses_app_passwords_too(api, run, bob, app_password, clock):
    def block(db, svc):
        db.get(User, bob.id).fraud_blocked_at = svc.clock.now()
    run(block)
    assert mail_login(api, app_password).status_code == 401


def test_a_correct_app_password_resets_their_count(api, run, bob, app_password, runtime):
    most = lockout.app_password_threshold(runtime.services)
    for _ in range(most - 1):
        mail_login(api, "abcd efgh ijkl mnop")
    assert stored(run, bob.id).app_password_failed_count == most - 1
    assert mail_login(api, app_password).json == {"valid": True}
    assert stored(run, bob.id).app_password_failed_count == 0
    for _ in range(most - 1):
        mail_login(api, "abcd efgh ijkl mnop")
    assert mail_login(api, app_password).json == {"valid": True}
    assert events(run, "app_passwords_locked") == 0


# --- sign-ins through the JSON API: the relying application's address, never familiar ---------


def familiar_rows(run, user_id):
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(FamiliarSource)
                                         .where(FamiliarSource.user_id == user_id)))


def test_failures_through_a_relying_application_never_lock_the_persons_familiar_page_sign_ins(
        app, api, run, bob, totp_bob, clock, threshold):
    """The attack: bob once signs in through a relying application with his app; anyone then types
    wrong passwords into that application's login form (no key needed). Its address never became
    familiar, so this locks only the unfamiliar path: bob at home on the page signs in as ever."""
    browser = app.test_client()
    assert page_sign_in_with_app(app, totp_bob, clock, HOME, browser)
    assert sign_in_with_app(api, totp_bob, clock, RELYING) == "approved"
    answers = [password_from(api, RELYING).status_code for _ in range(threshold + 2)]
    assert answers == [401] * (threshold - 1) + [423] * 3
    user = stored(run, bob.id)
    assert user.locked_until is None and user.unfamiliar_locked_until is not None
    assert password_from(api, RELYING, PASSWORD).status_code == 423  # the application's sign-ins wait it out
    assert signed_in(browser)  # bob's session was not ended...
    assert page_sign_in_with_app(app, totp_bob, clock, HOME)  # ...and he signs in from home as ever
    clock.advance(lockout.BASE_DURATION.total_seconds())
    assert password_from(api, RELYING, PASSWORD).status_code == 201


def test_an_approved_sign_in_through_the_api_makes_no_source_familiar(api, run, bob, totp_bob, dave, clock):
    assert sign_in_with_app(api, totp_bob, clock, RELYING) == "approved"  # the second factor
    assert password_from(api, RELYING, PASSWORD, "dave").json["status"] == "approved"  # no second factor owed
    assert familiar_rows(run, bob.id) == familiar_rows(run, dave.id) == 0
    assert run(lambda db, svc: lockout.is_familiar(db, svc, bob.id, RELYING)) is False


def test_wrong_passwords_and_codes_through_the_api_count_as_unfamiliar_even_from_a_familiar_address(
        api, run, bob, home_bob, clock):
    """A relying application on the person's own network (here HOME) is still not the person."""
    password_from(api, HOME)
    under_way = password_from(api, HOME, PASSWORD).json["id"]
    wrong = f"{(int(pyotp_code(home_bob, clock.now())) + 1) % 1_000_000:06d}"
    refused = api.post(f"/authentications/{under_way}/checks", {"code": wrong})
    assert refused.json["error"] == "invalid_code", refused.json
    user = stored(run, bob.id)
    assert (user.failed_count, user.unfamiliar_failed_count) == (0, 2)


# --- lockouts grow, and a completed sign-in starts them again at 15 minutes -------------------


def test_each_lockout_lasts_twice_as_long_as_the_last_until_a_completed_sign_in(
        api, run, bob, totp_bob, clock, threshold):
    for minutes in (15, 30, 60, 120):
        for _ in range(threshold):
            password_from(api, ATTACKER)
        clock.advance(minutes=minutes, seconds=-1)
        assert password_from(api, ATTACKER, PASSWORD).status_code == 423, minutes
        clock.advance(seconds=1)
        assert password_from(api, ATTACKER, PASSWORD).status_code == 201, minutes
    assert stored(run, bob.id).lockouts == 4
    assert sign_in_with_app(api, totp_bob, clock) == "approved"
    assert stored(run, bob.id).lockouts == 0
    for _ in range(threshold):
        password_from(api, ATTACKER)
    user = stored(run, bob.id)
    assert user.unfamiliar_locked_until == clock.now() + lockout.BASE_DURATION


def test_lockouts_never_last_more_than_a_day():
    assert [lockout.duration(n) for n in range(4)] == [timedelta(minutes=m) for m in (15, 30, 60, 120)]
    assert lockout.duration(6) == timedelta(minutes=960)
    assert lockout.duration(7) == lockout.duration(10_000) == timedelta(hours=24)


# --- never 100 failures in a row without a lockout (NIST SP 800-63B-4 §3.2.2) ----------------


def test_never_more_than_two_thresholds_of_failures_without_a_lockout(app, api, run, bob, home_bob, clock, threshold):
    """Familiar and unfamiliar sources count apart, so between two lockouts at most
    2 x (threshold - 1) failures pass: far under 100."""
    longest = run_length = failures = attempt = 0
    lockouts_seen = 0
    while failures < 100:
        before = events(run, "sign_in", "failed")
        answer = page_password(app, HOME if attempt % 2 else f"203.0.113.{attempt % 50 + 1}")
        counted = events(run, "sign_in", "failed") - before
        locks = events(run, "account_locked")
        if answer == 423 and not counted:  # refused before the password was looked at: wait it out
            clock.advance(hours=24, seconds=1)
            continue
        attempt += 1
        failures += 1
        run_length = 0 if locks > lockouts_seen else run_length + 1
        lockouts_seen = locks
        longest = max(longest, run_length)
    assert longest == 2 * (threshold - 1) <= lockout.MOST_FAILURES_IN_A_ROW
    assert lockouts_seen >= 100 // (2 * threshold)


@pytest.mark.parametrize("setting", ["LOCKOUT_THRESHOLD", "APP_PASSWORD_LOCKOUT_THRESHOLD"])
def test_a_threshold_set_too_high_stops_start_up_naming_it(app_config, setting):
    """Published limits are the enforced ones: a threshold that would break the 100 is refused."""
    from app import create_app
    from settings import SettingsError

    with pytest.raises(SettingsError) as stopped:
        create_app({**app_config, setting: "34"})
    assert setting in str(stopped.value) and "33" in str(stopped.value)


def test_a_threshold_above_the_cap_is_still_held_under_the_hundred(app, runtime):
    """Defence in depth: Limits made in code (not from settings) are capped where they are enforced."""
    from dataclasses import replace

    from mfa.limits import Limits

    svc = replace(runtime.services, limits=Limits({limits.LOCKOUT_THRESHOLD: 500,
                                                    limits.APP_PASSWORD_LOCKOUT_THRESHOLD: 500}))
    assert 3 * (lockout.threshold(svc) - 1) < lockout.MOST_FAILURES_IN_A_ROW
    assert lockout.app_password_threshold(svc) == lockout.HIGHEST_THRESHOLD


# --- familiar sources --------------------------------------------------------------------


def test_a_right_password_alone_does_not_make_a_source_familiar(app, api, run, bob, totp_bob, clock, threshold):
    new = "192.0.2.44"
    assert page_password(app, new, PASSWORD) == 302  # on to the second factor, still owed
    answers = [password_from(api, "198.51.100.3").status_code for _ in range(threshold)]
    assert answers[-1] == 423
    assert page_password(app, new, PASSWORD) == 423  # still unfamiliar
    assert run(lambda db, svc: lockout.is_familiar(db, svc, bob.id, new)) is False
    # Completing the second factor from there is what makes it familiar.
    assert run(lambda db, svc: _unlock(db, svc)) is None
    assert page_sign_in_with_app(app, totp_bob, clock, new)
    for _ in range(threshold):
        password_from(api, "198.51.100.3")
    assert page_password(app, new, PASSWORD) == 302
    assert run(lambda db, svc: lockout.is_familiar(db, svc, bob.id, new)) is True


def _unlock(db, svc):
    from mfa import accounts

    accounts.unlock(db, svc, "bob")


def test_a_sign_in_that_needs_no_second_factor_makes_its_source_familiar(app, api, run, dave, threshold):
    browser = app.test_client()
    assert page_password(app, "192.0.2.8", PASSWORD, "dave", browser) == 302 and signed_in(browser)
    for _ in range(threshold):
        password_from(api, ATTACKER, username="dave")
    assert page_password(app, "192.0.2.8", PASSWORD, "dave") == 302


def test_familiar_sources_are_kept_as_keyed_hashes_and_move_last_seen(app, run, bob, home_bob, clock):
    first = clock.now()
    assert page_sign_in_with_app(app, home_bob, clock)
    rows = run(lambda db, svc: db.scalars(select(FamiliarSource).where(FamiliarSource.user_id == bob.id)).all())
    assert len(rows) == 1 and HOME not in rows[0].source_hash and len(rows[0].source_hash) == 64
    assert rows[0].first_seen_at < first <= rows[0].last_seen_at  # home_bob's sign-in first, this one last


def test_an_ipv6_source_is_its_64_prefix_and_an_ipv4_mapped_one_its_ipv4_address():
    assert lockout.source_key("2001:db8:1:2:abcd::9") == lockout.source_key("2001:db8:1:2::5") == "2001:db8:1:2::/64"
    assert lockout.source_key("2001:db8:1:3::5") != lockout.source_key("2001:db8:1:2::5")
    assert lockout.source_key("::ffff:192.0.2.1") == lockout.source_key("192.0.2.1") == "192.0.2.1"
    assert lockout.source_key(None) is None


def test_a_second_factor_from_another_address_in_the_same_ipv6_64_counts_as_familiar(
        app, api, run, bob, totp_bob, clock, threshold):
    assert page_sign_in_with_app(app, totp_bob, clock, "2001:db8:1:2::5")
    for _ in range(threshold):
        password_from(api, ATTACKER)
    assert page_password(app, "2001:db8:1:2:ffff::1", PASSWORD) == 302
    assert page_password(app, "2001:db8:1:3::1", PASSWORD) == 423


# --- the helpdesk ------------------------------------------------------------------------


def test_users_unlock_clears_every_counter_and_lock(app, api, run, bob, home_bob, app_password, runtime, threshold):
    for _ in range(threshold):
        password_from(api, ATTACKER)
    for _ in range(3):
        page_password(app, HOME)
    for _ in range(lockout.app_password_threshold(runtime.services)):
        mail_login(api, "abcd efgh ijkl mnop")
    user = stored(run, bob.id)
    assert user.unfamiliar_locked_until and user.app_password_locked_until and user.failed_count == 3
    result = app.test_cli_runner().invoke(args=["users", "unlock", "bob"])
    assert result.exit_code == 0, result.output
    user = stored(run, bob.id)
    assert (user.failed_count, user.locked_until, user.unfamiliar_failed_count, user.unfamiliar_locked_until,
            user.app_password_failed_count, user.app_password_locked_until, user.lockouts) == (0, None, 0, None, 0,
                                                                                                None, 0)
    assert password_from(api, ATTACKER, PASSWORD).status_code == 201
    assert mail_login(api, app_password).json == {"valid": True}


# --- races (PostgreSQL) ------------------------------------------------------------------


@postgres_only
def test_twenty_wrong_passwords_at_once_count_exactly_and_lock_once(runtime, run, bob, threshold):
    run(lambda db, svc: setattr(db.get(User, bob.id), "unfamiliar_failed_count", 3))

    def guess(session):
        with use_case(session):
            authentications.start(session, runtime.services, "bob", WRONG, ATTACKER)

    outcomes = all_at_once(runtime, [guess] * 20)
    counted = threshold - 3  # the rest find the lockout and count nothing
    assert outcomes == ["invalid_credentials"] * (counted - 1) + ["locked"] * (20 - counted + 1)
    user = stored(run, bob.id)
    assert user.unfamiliar_failed_count == 0 and user.lockouts == 1 and user.unfamiliar_locked_until
    assert events(run, "account_locked") == 1


@postgres_only
def test_twenty_wrong_app_passwords_at_once_count_exactly_and_lock_once(runtime, run, bob, app_password):
    svc = runtime.services
    run(lambda db, svc: setattr(db.get(User, bob.id), "app_password_failed_count", 5))

    def guess(session):
        with use_case(session):
            app_passwords.verify(session, svc, "bob", "abcd efgh ijkl mnop", ATTACKER)

    outcomes = all_at_once(runtime, [guess] * 20)
    assert outcomes == ["invalid_credentials"] * 20
    counted = lockout.app_password_threshold(svc) - 5
    assert events(run, "app_passwords_locked") == 1
    assert run(lambda db, svc: db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.event == "app_password_check", AuditEvent.reason == "no_match"))) == counted
    user = stored(run, bob.id)
    assert user.app_password_failed_count == 0 and user.app_password_locked_until
    assert user.locked_until is None and user.unfamiliar_locked_until is None
