"""Browser sessions that really end, and approvals that are spent once.

Two Flask test clients are two browsers; copying a cookie from one to the other is a replay.
"""
from __future__ import annotations

import hashlib
import json
import threading

import pytest
from sqlalchemy import func, select

from app import create_app
from mfa import accounts, approvals, browser_sessions, lockout
from models import AppPassword, Authentication, BrowserSession
from settings import SettingsError
from tests.browser_steps import COOKIE, app_step, cookie, csrf_token, password_step, post_form, replay, signed_in
from tests.helpers import add_phone, matched, pyotp_code, ring, start_sign_in
from tests.personas import MOBILE, PASSWORD
from tests.sql_counting import counting


# --- the stored sessions ----------------------------------------------------------------------

def sessions_of(run, user) -> int:
    return run(lambda db, svc: db.scalar(select(func.count()).select_from(BrowserSession)
                                         .where(BrowserSession.user_id == user.id)))


def snapshot(run, cookie_value) -> dict:
    """The stored row of a session, to put back later: as if another browser had read it
    before this one's sign-in finished (the two requests racing)."""
    def read(db, svc):
        row = db.get(BrowserSession, hashlib.sha256(cookie_value.encode()).hexdigest())
        return {c: getattr(row, c) for c in ("id_hash", "user_id", "data", "created_at", "last_seen_at",
                                             "signed_in_at")}
    return run(read)


def put_back(run, row: dict) -> None:
    run(lambda db, svc: db.add(BrowserSession(**row)))


# --- signing out ---------------------------------------------------------------------------------

def test_a_signed_out_cookie_no_longer_opens_the_account_or_security_info(app, client, dave):
    password_step(client, "dave")
    stolen = cookie(client)
    assert signed_in(replay(stolen, app))
    post_form(client, "/sign-out", token_from="/account")
    replayed = replay(stolen, app)
    for path in ("/account", "/security-info", "/app-passwords"):
        response = replayed.get(path)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], path
    assert not signed_in(client)


def test_the_cookie_is_a_random_id_and_only_its_hash_is_stored(app, client, run, dave):
    response = password_step(client, "dave")
    value = cookie(client)
    assert value is not None and len(value) == 43 and browser_sessions.is_session_id(value)
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie
    stored = run(lambda db, svc: list(db.scalars(select(BrowserSession.id_hash))))
    assert stored == [hashlib.sha256(value.encode()).hexdigest()]
    assert value not in run(lambda db, svc: db.get(BrowserSession, stored[0]).data)


def test_over_https_the_cookie_is_secure_and_host_prefixed(app_config, dave):
    secure_app = create_app({**app_config, "PUBLIC_BASE_URL": "https://mfa.example.org"})
    browser = secure_app.test_client()
    page = browser.get("/sign-in", base_url="https://mfa.example.org")
    token = matched(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    set_cookie = page.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-session=")
    assert all(part in set_cookie for part in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"))
    assert "Domain" not in set_cookie
    response = browser.post("/sign-in", data={"csrf_token": token, "username": "dave", "password": PASSWORD},
                            base_url="https://mfa.example.org",
                            headers={"Referer": "https://mfa.example.org/sign-in"})  # CSRF checks it over https
    assert response.status_code == 302 and response.headers["Set-Cookie"].startswith("__Host-session=")
    secure_app.extensions["mfa"].engine.dispose()


def test_signing_in_gives_the_browser_a_new_session_id(app, client, run, dave):
    csrf_token(client)
    before = cookie(client)
    assert before
    password_step(client, "dave")
    after = cookie(client)
    assert after and after != before
    assert not signed_in(replay(before, app))
    assert run(lambda db, svc: db.get(BrowserSession, browser_sessions.id_hash(before))) is None


def test_pages_that_store_nothing_create_no_session(app, client, run, dave):
    assert client.get("/account").status_code == 302
    assert client.get("/healthz").status_code in (200, 404)
    assert cookie(client) is None
    assert run(lambda db, svc: db.scalar(select(func.count()).select_from(BrowserSession))) == 0


def test_styles_scripts_and_the_api_never_read_the_session_store(app, client, dave):
    password_step(client, "dave")
    with counting(app) as counter:
        with client.get("/static/web/app.css") as styles:  # closed: it holds the file open
            assert styles.status_code == 200
        client.get("/api/v1/limits")
    assert counter.statements == [] or all("browser_sessions" not in s for s in counter.statements), \
        counter.report()
    with counting(app) as counter:
        client.get("/account")
    assert any("browser_sessions" in s for s in counter.statements)


def test_an_unknown_or_malformed_cookie_is_forgotten(app, dave):
    for value in ("x" * 43, "not a token", "a" * 1000, "é" * 43):
        browser = replay(value, app)
        response = browser.get("/account")
        assert response.status_code == 302
        assert cookie(browser) is None


# --- an approval is spent once -----------------------------------------------------------------

def test_a_replayed_pre_approval_flow_cookie_mints_no_session(app, client, run, bob, totp_bob, clock):
    password_step(client, "bob")
    flow_cookie = cookie(client)  # the password stage: the flow with the authentication id
    app_step(client, totp_bob, clock)
    assert client.get("/verify").status_code == 302 and signed_in(client)
    replayed = replay(flow_cookie, app)
    response = replayed.get("/verify")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert not signed_in(replayed)
    clock.advance(hours=1)
    replayed = replay(flow_cookie, app)
    assert replayed.get("/verify").status_code == 302 and not signed_in(replayed)
    assert sessions_of(run, bob) == 1


def test_a_copied_flow_cookie_read_before_the_original_finishes_still_wins_only_once(
        app, client, run, bob, totp_bob, clock):
    password_step(client, "bob")
    app_step(client, totp_bob, clock)
    flow_cookie = cookie(client)
    copied = snapshot(run, flow_cookie)
    assert client.get("/verify").status_code == 302 and signed_in(client)
    put_back(run, copied)  # the copy's request read the flow before the original rotated it away
    replayed = replay(flow_cookie, app)
    response = replayed.get("/verify")
    assert response.status_code == 409
    assert "This sign-in has already been used. Sign in again." in response.get_data(as_text=True)
    assert not signed_in(replayed)
    assert sessions_of(run, bob) == 1


def test_the_copy_that_wins_the_race_leaves_the_original_nothing(app, client, run, bob, totp_bob, clock):
    password_step(client, "bob")
    app_step(client, totp_bob, clock)
    flow_cookie = cookie(client)
    copied = snapshot(run, flow_cookie)
    attacker = replay(flow_cookie, app)
    assert attacker.get("/verify").status_code == 302 and signed_in(attacker)
    put_back(run, copied)
    response = client.get("/verify")
    assert response.status_code == 409 and not signed_in(client)
    assert sessions_of(run, bob) == 1


def test_a_registration_flow_replay_opens_nothing_and_creates_no_app_password(app, client, run, bob, clock):
    password_step(client, "bob")
    post_form(client, "/register", {"method": "app"}, token_from="/register")
    page = client.get("/register/app").get_data(as_text=True)
    secret = _pending_secret(run, bob)
    assert secret[:4] in page
    flow_cookie = cookie(client)
    copied = snapshot(run, flow_cookie)
    done = post_form(client, "/verify/code", {"code": pyotp_code(secret, clock.now())}, token_from="/register/app",
                     follow_redirects=True)
    assert done.status_code == 200 and "Do you need an app password?" in done.get_data(as_text=True)
    for _ in range(3):
        put_back(run, copied)
        response = replay(flow_cookie, app).get("/verify")
        assert response.status_code == 409
        assert "app-password" not in response.get_data(as_text=True)
        run(lambda db, svc: browser_sessions.end(db, flow_cookie))
    count = run(lambda db, svc: db.scalar(select(func.count()).select_from(AppPassword)
                                          .where(AppPassword.user_id == bob.id)))
    assert count == 0  # none unless the person asks for one
    assert sessions_of(run, bob) == 1


def _pending_secret(run, user):
    """The secret of the app being enrolled (what the QR code on the page carries)."""
    from mfa import methods
    from models import Method
    from tests.helpers import secret_from_uri

    def find(db, svc):
        method = db.scalar(select(Method).where(Method.user_id == user.id, Method.type == "totp",
                                                Method.verified_at.is_(None)))
        return secret_from_uri(methods.pending_totp_uri(db, svc, method.user, method.id))
    return run(find)


def test_an_approval_left_unused_for_five_minutes_opens_nothing(app, client, run, bob, totp_bob, clock):
    password_step(client, "bob")
    app_step(client, totp_bob, clock)
    clock.advance(minutes=6)
    response = client.get("/verify")
    assert response.status_code == 409 and "too long" in response.get_data(as_text=True)
    assert not signed_in(client) and sessions_of(run, bob) == 0


def test_spending_an_approval_twice_is_refused_by_the_domain(run, bob, clock):
    def approved(db, svc):
        now = svc.clock.now()
        auth = Authentication(user_id=bob.id, status="approved", purpose="sign_in", registering=True, attempts=0,
                              sends=0, created_at=now, expires_at=now, completed_at=now)
        db.add(auth)
        db.flush()
        return auth.id

    auth_id = run(approved)
    first = run(lambda db, svc: approvals.spend(db, svc, db.get(Authentication, auth_id), "sign_in", None, None))
    assert first.session_id
    with pytest.raises(approvals.AlreadyUsed):
        run(lambda db, svc: approvals.spend(db, svc, db.get(Authentication, auth_id), "sign_in", None, None))
    assert sessions_of(run, bob) == 1


def test_a_sign_in_started_through_the_api_never_becomes_a_browser_session(run, api, dave):
    auth = api.post("/authentications", {"username": "dave", "password": PASSWORD}).json
    assert auth["status"] == "approved"
    assert run(lambda db, svc: db.get(Authentication, auth["id"]).api_key_id) is not None
    with pytest.raises(approvals.AlreadyUsed):
        run(lambda db, svc: approvals.spend(db, svc, db.get(Authentication, auth["id"]), "sign_in", None, None))


def test_concurrent_exchanges_of_one_flow_make_exactly_one_session(app, client, run, bob, totp_bob, clock):
    password_step(client, "bob")
    app_step(client, totp_bob, clock)
    flow_cookie = cookie(client)
    copied = snapshot(run, flow_cookie)
    answers: list[str] = []
    start = threading.Barrier(8)

    def exchange():
        browser = replay(flow_cookie, app)
        start.wait()
        response = browser.get("/verify")
        answers.append(f"{response.status_code} {response.headers.get('Location', '')}")

    for _ in range(3):  # a few rounds: the row is put back each time, so every request reads the flow
        threads = [threading.Thread(target=exchange) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        put_back_if_gone(run, copied)
    assert answers.count("302 /account") == 1, answers
    assert all(a in ("302 /account", "302 /sign-in", "409 ") for a in answers), answers
    assert sessions_of(run, bob) == 1


def put_back_if_gone(run, row):
    def put(db, svc):
        if db.get(BrowserSession, row["id_hash"]) is None:
            db.add(BrowserSession(**row))
    run(put)


# --- timeouts -------------------------------------------------------------------------------------

def test_an_hour_without_use_ends_the_session(client, dave, clock):
    password_step(client, "dave")
    clock.advance(minutes=59)
    assert signed_in(client)
    clock.advance(minutes=59)
    assert signed_in(client)  # each use counts from the last one
    clock.advance(minutes=61)
    assert not signed_in(client)


def test_twelve_hours_after_sign_in_the_session_ends_however_busy(client, dave, clock):
    password_step(client, "dave")
    for _ in range(14):  # 11 h 40 min of steady use
        clock.advance(minutes=50)
        assert signed_in(client)
    clock.advance(minutes=20)
    assert not signed_in(client)


def test_the_session_limits_are_settings(app_config, dave, clock):
    short = create_app({**app_config, "SESSION_IDLE_MINUTES": "5", "SESSION_MAX_HOURS": "1"})
    browser = short.test_client()
    password_step(browser, "dave")
    clock.advance(minutes=4)
    assert signed_in(browser)
    clock.advance(minutes=6)
    assert not signed_in(browser)
    short.extensions["mfa"].engine.dispose()


@pytest.mark.parametrize("name, value", [
    ("SESSION_IDLE_MINUTES", "0"), ("SESSION_IDLE_MINUTES", "an hour"), ("SESSION_MAX_HOURS", "25"),
    ("SESSION_MAX_HOURS", "-1"), ("SESSION_IDLE_MINUTES", "181"),
])
def test_session_limits_outside_their_range_stop_start_up(app_config, name, value):
    config = {**app_config, "SESSION_MAX_HOURS": "3", name: value}
    with pytest.raises(SettingsError, match=name):
        create_app(config)


def test_idle_sessions_are_pruned(app, client, run, dave, clock):
    password_step(client, "dave")
    clock.advance(hours=2)
    replay("", app).get("/sign-in")  # a new session, once a while, prunes the idle ones
    left = run(lambda db, svc: db.scalar(select(func.count()).select_from(BrowserSession)
                                         .where(BrowserSession.user_id.is_not(None))))
    assert left == 0


# --- ending the person's sessions --------------------------------------------------------------

def test_sign_out_everywhere_ends_another_browsers_session_and_this_one(app, run, dave):
    laptop, phone = app.test_client(), app.test_client()
    password_step(laptop, "dave")
    password_step(phone, "dave")
    assert signed_in(laptop) and signed_in(phone)
    page = laptop.get("/security-info").get_data(as_text=True)
    assert "Sign out everywhere" in page
    response = post_form(laptop, "/security-info/sign-out-everywhere", token_from="/security-info")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert not signed_in(phone) and not signed_in(laptop)
    assert sessions_of(run, dave) == 0


def test_sign_out_everywhere_needs_its_csrf_token(app, client, run, dave):
    password_step(client, "dave")
    response = client.post("/security-info/sign-out-everywhere")
    assert response.status_code == 400
    assert signed_in(client)


def test_a_lockout_ends_the_persons_sessions(app, client, api, dave):
    password_step(client, "dave")
    for _ in range(lockout.threshold(app.extensions["mfa"].services)):  # on the page, from where dave signed in
        post_form(app.test_client(), "/sign-in", {"username": "dave", "password": "wrong"})
    assert not signed_in(client)


def test_a_fraud_report_ends_the_persons_sessions(app, client, live, phones, run, alice):
    browser = replay(run(lambda db, svc: browser_sessions.create(
        db, svc, {}, user_id=alice.id, signed_in_at=svc.clock.now())), app)
    assert signed_in(browser)
    sid = ring(live, phones, start_sign_in(live.api, "alice"))
    phones.answer(sid)
    phones.press(sid, "0#")
    phones.wait_idle()
    assert not signed_in(browser)


@pytest.mark.parametrize("command", ["unlock", "reset-methods"])
def test_users_unlock_and_reset_methods_end_the_persons_sessions(app, client, dave, command):
    password_step(client, "dave")
    result = app.test_cli_runner().invoke(args=["users", command, "dave"])
    assert result.exit_code == 0, result.output
    assert not signed_in(client)


def test_changing_the_default_method_ends_the_other_sessions_but_not_this_one(app, run, bob, totp_bob, clock):
    add_phone(run, bob, MOBILE, types=("sms",))
    here = app.test_client()
    password_step(here, "bob")
    app_step(here, totp_bob, clock)
    here.get("/verify")
    other = replay(run(lambda db, svc: browser_sessions.create(
        db, svc, {}, user_id=bob.id, signed_in_at=svc.clock.now())), app)
    assert signed_in(here) and signed_in(other)
    sms = run(lambda db, svc: next(m.id for m in accounts.get_user(db, "bob").methods if m.type == "sms"))
    post_form(here, "/security-info/default", {"method_id": sms}, token_from="/security-info")
    assert signed_in(here) and not signed_in(other)


def test_removing_a_method_ends_the_other_sessions_but_not_this_one(app, run, bob, totp_bob, clock):
    add_phone(run, bob, MOBILE, types=("sms",))
    here = app.test_client()
    password_step(here, "bob")
    app_step(here, totp_bob, clock)
    here.get("/verify")
    other = replay(run(lambda db, svc: browser_sessions.create(
        db, svc, {}, user_id=bob.id, signed_in_at=svc.clock.now())), app)
    sms = run(lambda db, svc: next(m.id for m in accounts.get_user(db, "bob").methods if m.type == "sms"))
    done = post_form(here, "/security-info/remove", {"method_id": sms}, token_from="/security-info",
                     follow_redirects=True)
    assert "The method has been removed" in done.get_data(as_text=True)
    assert signed_in(here) and not signed_in(other)


def test_the_recent_sign_in_check_reads_only_what_the_server_recorded(app, client, run, dave, clock):
    password_step(client, "dave")
    clock.advance(minutes=11)

    def forge(db, svc):  # even session data claiming a fresh sign-in changes nothing
        row = db.get(BrowserSession, browser_sessions.id_hash(cookie(client) or ""))
        row.data = json.dumps({"user_id": row.user_id, "signed_in_at": svc.clock.now().isoformat()})
    run(forge)
    response = post_form(client, "/security-info/language", {"language": "cy-GB"}, token_from="/security-info")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
    assert run(lambda db, svc: accounts.get_user(db, "dave").language) == "en-GB"


def test_replacing_the_app_is_spent_once_and_ends_the_other_sessions(app, run, bob, totp_bob, clock):
    here = app.test_client()
    password_step(here, "bob")
    app_step(here, totp_bob, clock)
    here.get("/verify")
    other = replay(run(lambda db, svc: browser_sessions.create(
        db, svc, {}, user_id=bob.id, signed_in_at=svc.clock.now())), app)
    post_form(here, "/security-info/app", token_from="/security-info")
    change = snapshot(run, cookie(here))
    done = post_form(here, "/verify/code", {"code": pyotp_code(_pending_secret(run, bob), clock.now())},
                     token_from="/register/app", follow_redirects=True)
    assert "Your security info has been saved" in done.get_data(as_text=True)
    assert signed_in(here) and not signed_in(other)
    copy = "c" * 43  # a second browser holding the same change flow
    put_back(run, {**change, "id_hash": browser_sessions.id_hash(copy)})
    again = replay(copy, app).get("/verify")
    assert again.status_code == 409


# --- redirect targets --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["/account\r\nSet-Cookie: x=1", "/account\n", "/acc\rount", "/a\tb", "/a\x7fb",
                                 "/a\x00b", "/a\x85b"])
def test_control_characters_in_next_are_refused_never_a_500(client, dave, bad):
    form = client.get("/sign-in", query_string={"next": bad})
    assert form.status_code == 200
    response = password_step(client, "dave", next_url=bad)
    assert response.status_code in (302, 303, 400)
    if response.status_code != 400:
        assert response.headers["Location"] == "/account"


def test_a_safe_next_is_still_followed(client, dave):
    response = password_step(client, "dave", next_url="/app-passwords")
    assert response.headers["Location"] == "/app-passwords"


def test_safe_next_only_ever_returns_a_plain_same_site_path():
    from hypothesis import given, settings, strategies as st

    from web.flow import safe_next

    @settings(max_examples=500, deadline=None)
    @given(st.one_of(st.text(), st.text(alphabet="/\\:?#@.%\r\n\t\x00\x7fa-é\u2028").map(lambda t: "/" + t)))
    def check(url):
        kept = safe_next(url)
        if kept is not None:
            assert kept == url and kept.startswith("/") and not kept.startswith("//")
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in kept) and "\\" not in kept

    check()


def test_any_next_on_sign_in_answers_without_a_server_error(app, dave):
    from hypothesis import HealthCheck, given, settings, strategies as st

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.text(alphabet="/\\:?#@.%\r\n\t\x00\x7fa-é\u2028 ", max_size=30).map(lambda t: "/" + t))
    def check(next_url):
        browser = app.test_client()
        assert browser.get("/sign-in", query_string={"next": next_url}).status_code == 200
        response = password_step(browser, "dave", next_url=next_url)
        assert response.status_code in (302, 429)  # 30 sign-ins a minute from one address
        assert not any(ord(c) < 0x20 for c in response.headers.get("Location", ""))

    check()


def test_with_the_database_unreachable_a_browser_gets_503_and_keeps_its_cookie(app_config):
    unreachable = create_app({**app_config, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none?connect_timeout=1"})
    browser = unreachable.test_client()
    assert browser.get("/sign-in").status_code == 503  # a new session could not be stored
    browser.set_cookie(COOKIE, "a" * 43)
    for response in (browser.get("/account"), browser.post("/sign-out")):
        assert response.status_code == 503
        assert "try again in a minute" in response.get_data(as_text=True)
        assert "Set-Cookie" not in response.headers  # a blip signs nobody out
    with browser.get("/static/web/app.css") as styles:  # closed: it holds the file open
        assert styles.status_code == 200
