"""Recovery codes and passes in Chromium: the wizard's codes, and a lost phone's way back with a pass.

Screenshots go to $SCREENSHOT_DIR when set; axe-core checks every page the browser loads.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from mfa import access_passes, recovery_codes
from tests.helpers import add_phone
from tests.test_pages_registration import choose_phone
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page: fixtures used here)
    CHROMIUM, browser, chromium, page, shot, sign_in, texted_code)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
MOBILE = "+447400123456"


def test_the_wizard_ends_with_the_recovery_codes_once(page, live, phones, run, bob):
    sign_in(page, "bob")
    choose_phone(page)
    page.get_by_label("Phone number").fill("07400 123456")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code", exact=True).fill(texted_code(phones, MOBILE))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    codes = re.findall(r"[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}", page.locator("#recovery-codes").inner_text())
    assert len(codes) == 10
    shot(page, "23-registered-recovery-codes")
    assert run(lambda db, svc: recovery_codes.remaining(db, bob.id)) == 10
    page.get_by_role("link", name="Continue: I have saved these codes").click()
    page.get_by_text("You're signed in").wait_for()


def sign_in_by_text(page, phones, clock) -> None:
    """alice signs in with a texted code (rather than the call her phone would get first)."""
    sign_in(page, "alice")
    page.wait_for_url("**/verify")
    page.get_by_role("link", name="Sign in another way").click()
    clock.advance(30)
    page.get_by_role("button", name=re.compile(r"Text \+44")).click()
    page.get_by_label("Code", exact=True).fill(texted_code(phones, "+447400111222"))
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()


def test_a_pass_from_the_helpdesk_signs_in_past_a_lost_phone(page, live, phones, run, clock, alice):
    secret = run(lambda db, svc: access_passes.issue(db, svc, "alice"))
    sign_in(page, "alice")
    page.get_by_role("link", name="Use a recovery code or a pass from the helpdesk").click()
    page.get_by_role("heading", name="Use a recovery code or a pass").wait_for()
    page.get_by_label("Recovery code or pass").fill("wrong-wrong-wrong-wrong")
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("That code did not work").first.wait_for()
    shot(page, "24-verify-recovery-code-wrong")
    page.get_by_label("Recovery code or pass").fill(secret.lower())
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("You signed in with a temporary access pass.").wait_for()
    page.goto("/security-info")
    page.get_by_role("heading", name="Recovery codes").wait_for()
    page.get_by_role("button", name="Get new codes").click()  # a pass proves no phone: no new codes yet
    page.get_by_text("so you cannot get new recovery codes in this session").wait_for()
    shot(page, "25-security-info-new-codes-refused")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in_by_text(page, phones, clock)  # again, with the phone
    page.goto("/security-info")
    page.get_by_role("button", name="Get new codes").click()  # but a pass was used today: a day's wait
    page.get_by_text("Your other unused codes still work").wait_for()
    clock.advance(hours=24)  # the session has ended too (12 hours at most)
    sign_in_by_text(page, phones, clock)
    page.goto("/security-info")
    page.get_by_role("button", name="Get new codes").click()
    page.get_by_role("heading", name="Your new recovery codes").wait_for()
    shot(page, "26-security-info-new-recovery-codes")
    page.get_by_role("link", name="I have saved these codes").click()
    page.get_by_text("10 codes left").wait_for()


def test_the_form_is_also_offered_under_sign_in_another_way(page, live, run, alice):
    add_phone(run, alice, "+447400555666", kind="alternate", types=("sms",))
    sign_in(page, "alice")
    page.get_by_role("link", name="Sign in another way").click()
    page.get_by_role("link", name="Use a recovery code or a pass from the helpdesk").click()
    page.get_by_role("heading", name="Use a recovery code or a pass").wait_for()
