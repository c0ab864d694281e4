"""Remember this browser ("don't ask again on this browser for N days", REMEMBER_BROWSER_DAYS).

Two Flask test clients are two browsers; copying the remember cookie from one to the other is
a theft. Each test asks what an attacker would try: a guessed, another person's, a copied or
an old token; the token after sign-out everywhere, a fraud report, a method reset.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from app import create_app
from cli.database import alembic_config, upgrade
from mfa import accounts, authentications, lockout, remembered_browsers
from mfa.remembered_browsers import HASH_PREFIX
from models import AppPassword, AuditEvent, Method, RememberedBrowser
from settings import SettingsError, load, parse_remember_days
from tests.browser_steps import AxeWatch, WatchedBrowser, assert_accessible, password_step, post_form, replay, signed_in
from tests.conftest import TEST_DATA_KEY, run_in, stored_now
from tests.helpers import pyotp_code
from tests.personas import PASSWORD, person

REMEMBER = "remember"  # the cookie's name over http (tests); __Host-remember over https
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits
DAYS = 30


@pytest.fixture
def app_config(app_config):
    return {**app_config, "REMEMBER_BROWSER_DAYS": str(DAYS)}


def with_app(run, username: str, role: str = "admin"):
    """A person who must verify (admin in England) with an authenticator app."""
    user = person(run, username, role=role, region="england")

    def add(db, svc):
        db.add(Method(user_id=user.id, type="totp", label="Authenticator app", verified_at=svc.clock.now(),
                      is_default=True, totp_secret_encrypted=svc.vault.encrypt(SECRET), created_at=svc.clock.now()))
    run(add)
    return user


@pytest.fixture
def erin(run):
    return with_app(run, "erin")


@pytest.fixture
def frank(run):
    return with_app(run, "frank")


def app_code(client, clock):
    clock.advance(30)  # a fresh time step: each code is accepted once
    return post_form(client, "/verify/code", {"code": pyotp_code(SECRET, clock.now())}, token_from="/verify")


def second_factor(client, clock, username: str = "erin"):
    """Password, then the app code; the page the finished sign-in sends the browser to."""
    first = password_step(client, username)
    assert first.headers["Location"].endswith("/verify"), "the second step was not asked for"
    app_code(client, clock)
    return client.get("/verify")


def answer(client, choice: str | None):
    data = {"remember": choice} if choice else {}
    return post_form(client, "/remember-browser", data, token_from="/remember-browser")


def remember_here(client, clock, username: str = "erin") -> str:
    """Sign in with the second factor and choose yes; the cookie's token."""
    assert second_factor(client, clock, username).headers["Location"].endswith("/remember-browser")
    assert answer(client, "yes").status_code == 302
    token = remember_token(client)
    assert token
    return token


def remember_token(client) -> str | None:
    found = client.get_cookie(REMEMBER)
    return found.value if found else None


def skips_second_step(client, username: str = "erin") -> bool:
    """Whether the password alone signs this browser in (no /verify)."""
    response = password_step(client, username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return not response.headers["Location"].endswith(("/verify", "/register"))


def sign_out(client):
    post_form(client, "/sign-out", token_from="/account")


def stored(run, user=None) -> list[RememberedBrowser]:
    query = select(RememberedBrowser)
    if user is not None:
        query = query.where(RememberedBrowser.user_id == user.id)
    return run(lambda db, svc: list(db.scalars(query)))


# --- the setting ---------------------------------------------------------------------------------

def test_remembering_is_off_unless_the_setting_turns_it_on(tmp_path):
    settings = load({"DATA_KEY": TEST_DATA_KEY, "SECRET_KEY": "x"}, tmp_path)
    assert (settings.remember_days, settings.remember_days_by_role) == (0, {})


@pytest.mark.parametrize("value, parsed", [
    ("0", (0, {})), ("30", (30, {})), ("30,admin:0", (30, {"admin": 0})), ("admin:7", (0, {"admin": 7})),
    (" 14 , user:90 ", (14, {"user": 90})),
])
def test_the_setting_takes_days_for_everyone_and_per_role(value, parsed):
    assert parse_remember_days(value) == parsed


@pytest.mark.parametrize("value", ["x", "-1", "366", "30,40", "30,boss:0", "30,admin:0,admin:1", "1.5", ""])
def test_a_malformed_setting_stops_start_up(value):
    with pytest.raises(SettingsError):
        parse_remember_days(value)


# --- the question, and what yes does -------------------------------------------------------------

def test_after_the_second_step_yes_skips_it_on_this_browser_next_time(client, run, clock, erin):
    token = remember_here(client, clock)
    assert client.get("/account").status_code == 200
    sign_out(client)
    assert skips_second_step(client)
    assert signed_in(client)
    reasons = run(lambda db, svc: list(db.scalars(select(AuditEvent.reason).where(AuditEvent.event == "sign_in"))))
    assert reasons[-1] == "remembered_browser"
    assert stored(run, erin)[0].last_used_at == clock.now()
    assert remember_token(client) == token  # the same browser, the same token


def test_the_question_then_goes_on_to_the_page_the_person_asked_for(client, clock, erin):
    assert password_step(client, "erin", "/app-passwords").headers["Location"].endswith("/verify")
    app_code(client, clock)
    assert client.get("/verify").headers["Location"].endswith("/remember-browser")
    assert answer(client, "yes").headers["Location"].endswith("/app-passwords")
    sign_out(client)
    assert password_step(client, "erin", "/app-passwords").headers["Location"].endswith("/app-passwords")


def test_no_asks_every_time(client, run, clock, erin):
    second_factor(client, clock)
    response = answer(client, "no")
    assert response.headers["Location"].endswith("/account")
    assert remember_token(client) is None and stored(run) == []
    sign_out(client)
    assert not skips_second_step(client)


def test_answering_neither_is_an_error_linked_to_the_first_choice(client, clock, erin):
    second_factor(client, clock)
    response = answer(client, None)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Select yes if you want us to remember this browser" in page and 'href="#remember-yes"' in page
    assert "<title>Error: " in page


def test_the_cookie_is_strict_http_only_and_lasts_the_days_allowed(client, clock, erin):
    second_factor(client, clock)
    set_cookie = answer(client, "yes").headers["Set-Cookie"]
    assert set_cookie.startswith(f"{REMEMBER}=")
    assert all(part in set_cookie for part in ("HttpOnly", "SameSite=Strict", "Path=/",
                                               f"Max-Age={DAYS * 86400}"))


def test_over_https_the_cookie_is_secure_and_host_prefixed(app_config, erin):
    secure_app = create_app({**app_config, "PUBLIC_BASE_URL": "https://mfa.example.org"})
    with secure_app.test_request_context("/", base_url="https://mfa.example.org"):
        from web.remember_browser import cookie_name
        assert cookie_name() == "__Host-remember"
    secure_app.extensions["mfa"].engine.dispose()


def test_the_token_is_random_and_only_its_keyed_hash_is_stored(app, client, run, clock, erin):
    token = remember_here(client, clock)
    other = app.test_client()
    second = remember_here(other, clock)
    assert token != second and len(token) == 43 and remembered_browsers.is_token(token)
    rows = stored(run, erin)
    hashes = {row.token_hash for row in rows}
    assert hashlib.sha256(token.encode()).hexdigest() not in hashes  # keyed: the table alone proves nothing
    assert run(lambda db, svc: svc.vault.keyed_hash(HASH_PREFIX + token)) in hashes
    for row in rows:
        assert token not in (row.token_hash, row.label, row.id)


def test_the_question_comes_only_straight_after_a_second_factor(app, client, run, clock, erin, dave):
    remember_here(client, clock)
    sign_out(client)
    assert skips_second_step(client)  # remembered: no second factor now, so no question
    assert client.get("/remember-browser").headers["Location"].endswith("/account")
    before = len(stored(run))
    assert answer_without_offer(client).headers["Location"].endswith("/account")
    assert len(stored(run)) == before
    no_mfa = app.test_client()  # a password-only sign-in (policy needs no second factor)
    assert password_step(no_mfa, "dave").headers["Location"].endswith("/account")
    assert no_mfa.get("/remember-browser").headers["Location"].endswith("/account")


def answer_without_offer(client):
    token = client.get("/account").get_data(as_text=True)
    from tests.helpers import matched
    csrf = matched(r'name="csrf_token" value="([^"]+)"', token).group(1)
    return client.post("/remember-browser", data={"csrf_token": csrf, "remember": "yes"})


# --- what an attacker would try -----------------------------------------------------------------

def test_a_token_lets_only_its_own_person_skip_the_second_step(app, client, run, clock, erin, frank):
    token = remember_here(client, clock)
    sign_out(client)
    assert not skips_second_step(client, "frank")  # erin's browser, frank's password: frank verifies
    thief = replay(None, app)
    thief.set_cookie(REMEMBER, token)
    assert not skips_second_step(thief, "frank")
    assert run(lambda db, svc: remembered_browsers.skips_second_step(db, svc, frank, token)) is None


@pytest.mark.parametrize("value", ["x" * 43, "not a token", "a" * 1000, "é" * 43, ""])
def test_a_guessed_or_malformed_token_skips_nothing(app, run, clock, erin, value):
    guesser = app.test_client()
    guesser.set_cookie(REMEMBER, value or secrets.token_urlsafe(32))
    assert not skips_second_step(guesser)


def test_the_api_never_skips_the_second_step_even_with_a_token(client, run, clock, erin):
    token = remember_here(client, clock)
    auth = run(lambda db, svc: authentications.start(db, svc, "erin", PASSWORD, "192.0.2.1",
                                                     api_key_id="0" * 32, remembered_token=token))
    assert auth.status == "mfa_required"


def test_sign_out_everywhere_forgets_every_browser_and_a_copied_cookie_skips_nothing(app, client, run, clock, erin):
    token = remember_here(client, clock)
    other = app.test_client()
    remember_here(other, clock)
    thief = replay(None, app)
    thief.set_cookie(REMEMBER, token)  # a copy taken before
    response = post_form(client, "/security-info/sign-out-everywhere", token_from="/security-info")
    assert remember_token(client) is None, response.headers.getlist("Set-Cookie")
    assert stored(run, erin) == []
    for browser in (thief, other):
        assert not skips_second_step(browser)
    client.set_cookie(REMEMBER, token)  # the old cookie put back
    assert not skips_second_step(client)


def test_a_fraud_report_forgets_every_browser(live, phones, alice, clock):
    from tests.helpers import ring, start_sign_in, state

    token, _ = run_in(live.app, lambda db, svc: remembered_browsers.remember(db, svc, alice, "Chrome on Windows", None))
    auth = start_sign_in(live.api, "alice", expect="mfa_required")
    sid = ring(live, phones, auth)
    phones.answer(sid)
    phones.press(sid, "0#")
    phones.wait_idle()
    assert state(live, auth)["status"] == "fraud_reported"
    assert run_in(live.app, lambda db, svc: db.scalar(select(func.count()).select_from(RememberedBrowser))) == 0
    run_in(live.app, lambda db, svc: accounts.unlock(db, svc, "alice"))
    assert run_in(live.app, lambda db, svc: remembered_browsers.skips_second_step(db, svc, alice, token)) is None


def test_resetting_methods_forgets_every_browser(app, client, run, clock, erin):
    token = remember_here(client, clock)
    sign_out(client)
    run(lambda db, svc: accounts.reset_methods(db, svc, "erin"))
    assert stored(run, erin) == []
    with_app_again(run, erin)
    assert remember_token(client) == token
    assert not skips_second_step(client)  # the app is back; the browser is not remembered


def with_app_again(run, user):
    def add(db, svc):
        db.add(Method(user_id=user.id, type="totp", label="Authenticator app", verified_at=svc.clock.now(),
                      is_default=True, totp_secret_encrypted=svc.vault.encrypt(SECRET), created_at=svc.clock.now()))
    run(add)


def test_a_lockout_forgets_every_browser(app, client, run, clock, erin):
    remember_here(client, clock)
    sign_out(client)
    guesser = app.test_client()
    for _ in range(lockout.threshold(app.extensions["mfa"].services)):
        post_form(guesser, "/sign-in", {"username": "erin", "password": "wrong"})
    assert stored(run, erin) == []


def test_a_remembered_sign_in_never_counts_for_changing_security_info(client, run, clock, erin):
    remember_here(client, clock)
    sign_out(client)
    assert skips_second_step(client, "erin")
    change = post_form(client, "/security-info/language", {"language": "cy-GB"}, token_from="/security-info")
    assert "/sign-in" in change.headers["Location"]
    assert run(lambda db, svc: db.get(type(erin), erin.id).language) == "en-GB"
    # Signing in again for the change asks for the second step, remembered browser or not.
    assert password_step(client, "erin", "/security-info").headers["Location"].endswith("/verify")


def test_a_remembered_sign_in_cannot_create_an_app_password(client, run, clock, erin):
    """An app password is a lasting mail login that nothing else revokes: only a sign-in that has
    just passed a second factor may create one, never the password alone on a remembered browser."""
    remember_here(client, clock)
    sign_out(client)
    assert skips_second_step(client, "erin")
    created = post_form(client, "/app-passwords", {"name": "attacker"}, token_from="/app-passwords")
    assert "/sign-in" in created.headers["Location"]
    assert client.get("/app-passwords/created").status_code != 200
    assert run(lambda db, svc: db.scalar(select(func.count()).select_from(AppPassword)
                                          .where(AppPassword.user_id == erin.id))) == 0


def test_an_expired_or_shortened_remembering_asks_again(app_config, client, run, clock, erin):
    remember_here(client, clock)
    sign_out(client)
    clock.advance(timedelta(days=DAYS - 1).total_seconds())
    assert skips_second_step(client)
    sign_out(client)
    shorter = create_app({**app_config, "REMEMBER_BROWSER_DAYS": "7"})  # the operator shortened it since
    other = shorter.test_client()
    other.set_cookie(REMEMBER, remember_token(client) or "")
    assert not skips_second_step(other)
    shorter.extensions["mfa"].engine.dispose()
    clock.advance(timedelta(days=1).total_seconds())
    assert not skips_second_step(client)


def test_a_role_that_must_always_verify_is_never_offered_nor_remembered(app_config, client, run, clock, erin):
    token = remember_here(client, clock)
    sign_out(client)
    strict = create_app({**app_config, "REMEMBER_BROWSER_DAYS": f"{DAYS},admin:0"})
    browser = strict.test_client()
    browser.set_cookie(REMEMBER, token)
    assert not skips_second_step(browser)  # remembered before the rule: no longer honoured
    app_code(browser, clock)
    assert browser.get("/verify").headers["Location"].endswith("/account")  # no question
    assert answer_without_offer(browser).headers["Location"].endswith("/account")
    assert "Browsers we remember" not in browser.get("/security-info").get_data(as_text=True)
    strict.extensions["mfa"].engine.dispose()


# --- security info: listed, and forgotten one at a time -----------------------------------------

def test_security_info_lists_remembered_browsers_and_forgets_one(app, client, run, clock, erin):
    token = remember_here(client, clock)
    other = app.test_client()
    remember_here(other, clock)
    page = client.get("/security-info", headers={"User-Agent": "x"}).get_data(as_text=True)
    assert "Browsers we remember" in page and page.count("(this browser)") == 2  # the row and its button
    vault_hash = run(lambda db, svc: svc.vault.keyed_hash(HASH_PREFIX + token))
    mine = next(row for row in stored(run, erin) if row.token_hash == vault_hash)
    response = post_form(client, f"/security-info/remembered-browsers/{mine.id}/forget", token_from="/security-info")
    assert response.status_code == 302 and remember_token(client) is None
    assert [row.id for row in stored(run, erin)] != [] and mine.id not in [row.id for row in stored(run, erin)]
    client.set_cookie(REMEMBER, token)
    sign_out(client)
    assert not skips_second_step(client)
    sign_out(other)
    assert skips_second_step(other)  # the other browser is still remembered


def test_nobody_can_forget_another_persons_browser(app, client, run, clock, erin, frank):
    remember_here(client, clock)
    erins = stored(run, erin)[0]
    franks_browser = app.test_client()
    second_factor(franks_browser, clock, "frank")
    post_form(franks_browser, f"/security-info/remembered-browsers/{erins.id}/forget", token_from="/security-info")
    assert [row.id for row in stored(run, erin)] == [erins.id]


def test_a_new_remembering_replaces_what_this_browser_held(client, run, clock, erin, frank):
    remember_here(client, clock)
    sign_out(client)
    assert not skips_second_step(client, "frank")
    app_code(client, clock)
    assert client.get("/verify").headers["Location"].endswith("/remember-browser")
    answer(client, "yes")
    assert stored(run, erin) == [] and len(stored(run, frank)) == 1


def test_the_label_names_the_browser_and_system_only():
    from web.remember_browser import browser_label

    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
    iphone = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/18.1 Mobile/15E148 Safari/604.1")
    assert browser_label(firefox) == "Firefox on Windows"
    assert browser_label(iphone) == "Safari on an iPhone"
    assert browser_label("") == "A browser"


# --- the migration --------------------------------------------------------------------------------

def test_the_migration_upgrades_a_0002_database_with_its_people_and_downgrades(scratch_database, clock):
    from alembic import command
    from sqlalchemy import create_engine

    url, pg = scratch_database
    config = alembic_config(url)
    command.upgrade(config, "0002")
    engine = create_engine(url)
    with engine.begin() as conn:
        assert "remembered_browsers" not in inspect(conn).get_table_names()
        conn.execute(text("INSERT INTO users (id, username, password_hash, role, region, hybrid, language, "
                          "failed_count, created_at) VALUES ('u1', 'old.person', 'x', 'admin', 'england', false, "
                          "'en-GB', 0, :now)"), {"now": stored_now(clock, pg)})
    upgrade(url)
    with engine.begin() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("remembered_browsers")}
        assert columns == {"id", "user_id", "token_hash", "label", "created_at", "expires_at", "last_used_at"}
        assert conn.execute(text("SELECT username FROM users")).scalar_one() == "old.person"
        conn.execute(text("INSERT INTO remembered_browsers VALUES ('r1', 'u1', 'h', 'A browser', :now, :now, NULL)"),
                     {"now": stored_now(clock, pg)})
        with pytest.raises(IntegrityError):  # one token hash, one row
            with conn.begin_nested():
                conn.execute(text("INSERT INTO remembered_browsers VALUES ('r2', 'u1', 'h', 'B', :now, :now, NULL)"),
                             {"now": stored_now(clock, pg)})
    command.downgrade(config, "0002")
    with engine.begin() as conn:
        assert "remembered_browsers" not in inspect(conn).get_table_names()
    upgrade(url)
    engine.dispose()


# --- in Chromium: the path a person takes ----------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("SCREENSHOT_DIR") or "/tmp/h6")


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def watched(chromium):
    """Chromium with axe-core run on every page it loads: any violation fails the test."""
    browser = WatchedBrowser(chromium, AxeWatch())
    yield browser
    browser.axe.assert_clean()


def look(page, name: str) -> None:
    """A picture of the page (in SCREENSHOT_DIR, else /tmp/h6), which must fit the screen's width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    assert_accessible(page, name)


def pass_both_steps(page, clock) -> None:
    page.goto("/sign-in")
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    clock.advance(30)
    page.get_by_label(re.compile("code", re.I)).first.fill(pyotp_code(SECRET, clock.now()))
    page.get_by_role("button", name=re.compile("Continue|Verify|Sign in", re.I)).first.click()


@pytest.mark.parametrize("width", [1024, 375])
def test_a_person_chooses_yes_signs_in_without_the_second_step_then_forgets_the_browser(
        watched, live, clock, erin, width):
    context = watched.new_context(viewport={"width": width, "height": 800}, base_url=live.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    pass_both_steps(page, clock)
    page.get_by_role("heading", name="Do you want us to remember this browser?").wait_for()
    look(page, f"remember-question-{width}")
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("Select yes if you want us to remember this browser").first.wait_for()
    look(page, f"remember-question-error-{width}")
    page.get_by_label(f"Yes, do not ask again on this browser for {DAYS} days").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("You're signed in").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("You're signed in").wait_for()  # no second step
    page.goto("/security-info")
    page.get_by_role("heading", name="Browsers we remember").wait_for()
    look(page, f"remember-security-info-{width}")
    page.get_by_role("button", name=re.compile(r"Forget .*\(this browser\)")).click()
    page.get_by_text("We'll ask for the second step again on this browser").wait_for()
    look(page, f"remember-forgotten-{width}")
    assert not [c for c in context.cookies() if c["name"] == REMEMBER]
    context.close()


def test_browsers_past_their_end_are_deleted_now_and_then(app, client, run, clock, erin):
    remember_here(client, clock)
    clock.advance(timedelta(days=DAYS).total_seconds())
    app.test_client().get("/sign-in")  # a new session: the instance tidies up at most every 5 minutes
    assert stored(run) == []
