"""Recovery codes and passes on the pages (issue 14): shown once at the end of registration, new ones
from security info, and the form that takes a code or a pass on the sign-in's verify step."""
from __future__ import annotations

import re

import pytest

from mfa import access_passes, recovery_codes
from models import Method, User
from tests.browser_steps import app_step, password_step, post_form, signed_in
from tests.helpers import matched, pyotp_code
from tests.personas import person

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CODE = re.compile(r"<code>([0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5})</code>")


@pytest.fixture
def erin(run):
    """An administrator in England with an authenticator app."""
    user = person(run, "erin", role="admin", region="england")

    def add(db, svc):
        db.add(Method(user_id=user.id, type="totp", label="Authenticator app", verified_at=svc.clock.now(),
                      is_default=True, totp_secret_encrypted=svc.vault.encrypt(SECRET), created_at=svc.clock.now()))
    run(add)
    return user


def signed_in_with_app(client, clock) -> None:
    assert password_step(client, "erin").headers["Location"].endswith("/verify")
    clock.advance(30)
    app_step(client, SECRET, clock)
    client.get("/verify")
    assert signed_in(client)


def left(run, user) -> int:
    return run(lambda db, svc: recovery_codes.remaining(db, user.id))


def html(response) -> str:
    return response.get_data(as_text=True)


def test_registration_ends_with_ten_recovery_codes_shown_once(client, run, clock, bob):
    assert password_step(client, "bob").headers["Location"].endswith("/register")
    post_form(client, "/register", {"method": "app"}, token_from="/register")
    page = html(client.get("/register/app"))
    secret = "".join(re.findall(r"<span>([A-Z2-7]{1,4})</span>", matched(r'class="app-secret"[^>]*>(.*?)</p>',
                                                                           page).group(1)))
    post_form(client, "/verify/code", {"code": pyotp_code(secret, clock.now())}, token_from="/register/app")
    done = client.get("/verify")
    assert "/register/done" in done.headers["Location"]
    shown = html(client.get(done.headers["Location"]))
    codes = CODE.findall(shown)
    assert len(codes) == 10 and "You're set up" in shown
    assert "Continue: I have saved these codes" in shown
    assert left(run, bob) == 10
    again = html(client.get(done.headers["Location"]))  # a reload: never shown twice
    assert CODE.findall(again) == [] and "were shown when you finished setting up" in again
    assert not any(c in again for c in codes)


def test_security_info_says_how_many_are_left_and_gives_a_new_set_once(client, run, clock, erin):
    old = run(lambda db, svc: recovery_codes.generate(db, svc, db.get(User, erin.id)))
    run(lambda db, svc: recovery_codes.spend(db, svc, erin.id, recovery_codes.normalise(old[0])))
    signed_in_with_app(client, clock)
    assert "9 codes left" in html(client.get("/security-info"))
    made = post_form(client, "/security-info/recovery-codes", token_from="/security-info")
    assert made.status_code == 303 and made.headers["Location"].endswith("/security-info/recovery-codes")
    page = html(client.get("/security-info/recovery-codes"))
    new = CODE.findall(page)
    assert len(new) == 10 and "Your old recovery codes no longer work." in page
    assert "I have saved these codes" in page
    assert not set(old) & set(new)
    assert left(run, erin) == 10
    reload = client.get("/security-info/recovery-codes")
    assert reload.headers["Location"].endswith("/security-info")
    assert "10 codes left" in html(client.get("/security-info"))


def test_new_codes_need_a_recent_sign_in(client, run, clock, erin):
    signed_in_with_app(client, clock)
    clock.advance(minutes=11)
    refused = post_form(client, "/security-info/recovery-codes", token_from="/security-info")
    assert "/sign-in" in refused.headers["Location"]
    assert left(run, erin) == 0


def test_the_verify_step_offers_a_recovery_code_or_a_pass_and_takes_one(client, run, clock, erin):
    codes = run(lambda db, svc: recovery_codes.generate(db, svc, db.get(User, erin.id)))
    password_step(client, "erin")
    assert "Use a recovery code or a pass from the helpdesk" in html(client.get("/verify"))
    form = html(client.get("/verify/recovery"))
    assert 'for="code">Recovery code or pass' in form
    wrong = post_form(client, "/verify/code", {"code": "ZZZZZ-ZZZZZ-ZZZZZ", "from": "recovery"},
                      token_from="/verify/recovery")
    assert wrong.headers["Location"].endswith("/verify/recovery")
    assert "That code did not work" in html(client.get("/verify/recovery"))
    post_form(client, "/verify/code", {"code": codes[4].lower(), "from": "recovery"}, token_from="/verify/recovery")
    finished = client.get("/verify")
    assert finished.headers["Location"].endswith("/account")
    account = html(client.get("/account"))
    assert "You signed in with a recovery code. You have 9 left." in account


def test_a_pass_while_nothing_is_registered_signs_in_and_points_at_security_info(client, run, bob):
    secret = run(lambda db, svc: access_passes.issue(db, svc, "bob"))
    assert password_step(client, "bob").headers["Location"].endswith("/register")
    assert "Use a recovery code or a pass from the helpdesk" in html(client.get("/register"))
    post_form(client, "/verify/code", {"code": secret, "from": "recovery"}, token_from="/verify/recovery")
    finished = client.get("/verify")
    assert finished.headers["Location"].endswith("/security-info")
    page = html(client.get("/security-info"))
    assert "You signed in with a temporary access pass." in page and "add a phone or an app below now" in page
    assert run(lambda db, svc: recovery_codes.has_codes(db, bob.id)) is False  # nothing registered: no codes yet


@pytest.mark.parametrize("backup", ["recovery_code", "access_pass"])
def test_a_session_opened_by_a_recovery_code_or_a_pass_gets_no_new_codes(client, run, clock, erin, backup):
    codes = run(lambda db, svc: recovery_codes.generate(db, svc, db.get(User, erin.id)))
    typed = codes[4] if backup == "recovery_code" else run(lambda db, svc: access_passes.issue(db, svc, "erin"))
    password_step(client, "erin")
    post_form(client, "/verify/code", {"code": typed, "from": "recovery"}, token_from="/verify/recovery")
    assert client.get("/verify").headers["Location"].endswith("/account")
    before = left(run, erin)
    refused = post_form(client, "/security-info/recovery-codes", token_from="/security-info")
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/security-info")
    page = html(client.get("/security-info"))
    assert "so you cannot get new recovery codes in this session" in page
    assert left(run, erin) == before  # the person's own set still works
    assert run(lambda db, svc: recovery_codes.spend(db, svc, erin.id, recovery_codes.normalise(codes[5])))
    added = post_form(client, "/security-info/app", token_from="/security-info")  # the lost-phone flow still works
    assert "/sign-in" not in added.headers["Location"]
    assert client.get("/register/app").status_code == 200


def test_a_change_to_security_info_offers_no_recovery_code(client, run, clock, erin):
    signed_in_with_app(client, clock)
    post_form(client, "/security-info/app", token_from="/security-info")
    assert "Use a recovery code" not in html(client.get("/register/app"))
    assert client.get("/verify/recovery").headers["Location"].endswith("/verify")
