"""What people see, tested in a real browser: Playwright driving Debian's Chromium.

Screenshots go to $SCREENSHOT_DIR when set (`make screenshots` writes docs/screenshots).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect
import requests

from tests.browser_steps import AxeWatch, WatchedBrowser, assert_accessible
from tests.conftest import PASSWORD
from tests.helpers import add_phone, oathtool_code, secret_from_uri
from tests.test_call_page import add_app

CHROMIUM = "/usr/bin/chromium"
# Quiet and offline: no sandbox (containers), no GPU, no background calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
SHOTS = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else None


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser(chromium):
    """Chromium, with axe-core run on every page each of the test's browser contexts loads and on
    the pages as the test leaves them: any violation fails the test."""
    watched = WatchedBrowser(chromium, AxeWatch())
    yield watched
    watched.axe.assert_clean()


@pytest.fixture
def page(browser, live):
    context = browser.new_context(viewport={"width": 1024, "height": 800}, base_url=live.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    browser.axe.check_open_pages()
    context.close()


def shot(page, name: str) -> None:
    """Save a picture of the page (when asked), check it fits a phone's width and axe-core finds nothing."""
    # A click on a link may have started a navigation whose document is not there yet (Chromium then
    # has no documentElement for a moment): look once the page in the tab has loaded.
    page.wait_for_load_state("load")
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    assert_accessible(page, name)


def sign_in(page, username, password=PASSWORD):
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def texted_code(phones, number) -> str:
    phones.wait_idle()
    # The last text with a code: a change notification (mfa/change_notices.py) may have come after it.
    texts = [m.body for m in phones.messages(to=number)]
    body = next((t for t in reversed(texts) if re.search(r"#\d{6}$", t)), texts[-1] if texts else "")
    found = re.search(r"#(\d{6})$", body)
    assert found, body
    return found.group(1)


def test_first_sign_in_registers_a_mobile_by_text_and_offers_an_app_password(page, live, phones, bob):
    page.goto("/sign-in")
    shot(page, "01-sign-in")
    sign_in(page, "bob")
    page.wait_for_url("**/register")
    shot(page, "02-register-choose")
    page.get_by_label("Authentication phone").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Phone number").fill("07400 123456")
    shot(page, "03-register-phone")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/verify")
    assert "+44 •••• ••3456" in page.content()
    shot(page, "04-verify-text")
    code_box = page.get_by_label("Code", exact=True)
    assert code_box.get_attribute("autocomplete") == "one-time-code"
    assert code_box.get_attribute("inputmode") == "numeric"
    code_box.fill(texted_code(phones, "+447400123456"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're set up").wait_for()
    assert page.locator("#app-password").count() == 0  # only if asked for (tests/test_pages_registration.py)
    shot(page, "05-registered")
    page.get_by_role("link", name="Continue").click()
    page.get_by_text("You're signed in").wait_for()


def test_a_wrong_code_shows_an_error_linked_to_the_code_box(page, live, phones, run, bob):
    add_phone(run, bob, "+447400123456", types=("sms", "voice"))
    sign_in(page, "bob")
    page.wait_for_url("**/verify")
    texted_code(phones, "+447400123456")
    wrong = "000000" if texted_code(phones, "+447400123456") != "000000" else "111111"
    page.get_by_label("Code", exact=True).fill(wrong)
    page.get_by_role("button", name="Verify").click()
    summary = page.locator(".nhsuk-error-summary")
    assert "You can try 4 more times." in summary.inner_text()
    assert summary.locator("a").get_attribute("href") == "#code"
    shot(page, "06-verify-wrong-code")


@pytest.fixture(params=[1024, 375], ids=["desktop", "phone"])
def sized_page(request, browser, live):
    """A page at desktop and phone widths: (page, the suffix of its screenshots' names)."""
    width = request.param
    context = browser.new_context(viewport={"width": width, "height": 800}, base_url=live.url, is_mobile=width < 400)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page, ("" if width > 400 else f"-{width}")
    browser.axe.check_open_pages()
    context.close()


def test_signing_in_by_call_moves_on_by_itself_when_hash_is_pressed(sized_page, live, phones, run, bob):
    page, size = sized_page
    add_phone(run, bob, "+447400111222", types=("voice", "sms"))
    sign_in(page, "bob")
    page.wait_for_url("**/verify")
    page.get_by_role("heading", name="Your phone is ringing").wait_for()  # the "ringing" status callback
    expect(page.get_by_text("This page moves on by itself when you have.")).to_be_visible()  # said with the script only
    shot(page, "07-verify-call" + size)
    phones.wait_idle()
    sid = phones.calls(to="+447400111222")[-1].sid
    phones.answer(sid)
    page.get_by_role("heading", name="Press # now").wait_for()  # the page polled and moved on: no click
    assert page.evaluate("document.activeElement.tagName") == "H1"  # what changed is read out first
    shot(page, "16-verify-call-answered" + size)
    phones.press(sid, "#")
    page.get_by_text("You're signed in").wait_for()
    shot(page, "08-account" + size)


@pytest.fixture
def number_mode(app_config):
    app_config["CALL_APPROVAL"] = "number"  # (list before live)


def test_in_number_mode_the_call_page_shows_the_number_to_key_in(number_mode, sized_page, live, phones, run, bob):
    page, size = sized_page
    add_phone(run, bob, "+447400111222", types=("voice", "sms"))
    sign_in(page, "bob")
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    number = page.locator(".app-number-match").inner_text().split(":")[-1].strip()
    assert re.fullmatch(r"[1-8][0-9]", number)
    shot(page, "17-verify-call-number" + size)
    sid = phones.calls(to="+447400111222")[-1].sid
    phones.answer(sid)
    page.get_by_role("heading", name=f"Enter {number} on your phone's keypad").wait_for()
    shot(page, "18-verify-call-number-answered" + size)
    phones.press(sid, number)
    page.get_by_text("You're signed in").wait_for()


def test_a_busy_line_is_explained_and_can_be_tried_again_or_another_way(sized_page, live, phones, run, bob, clock):
    page, size = sized_page
    add_phone(run, bob, "+447400111222", types=("voice", "sms"))
    add_app(live, bob)
    phones.set_behaviour("+447400111222", "busy")
    sign_in(page, "bob")
    page.locator("main p:not([role=status])", has_text="The line was busy.").first.wait_for()
    page.get_by_role("heading", name="That call did not verify you").wait_for()
    for offer in ("Call me again", "Text me a code instead", "Use my authenticator app"):
        assert page.get_by_role("button", name=offer).is_visible()
    shot(page, "19-verify-call-busy" + size)
    with page.expect_navigation():
        page.get_by_role("link", name="Sign in another way").click()
    shot(page, "09-sign-in-another-way" + size)
    clock.advance(30)
    page.get_by_role("button", name=re.compile(r"Text \+44")).click()
    page.get_by_label("Code", exact=True).fill(texted_code(phones, "+447400111222"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're signed in").wait_for()


def test_registering_the_authenticator_app_by_qr_code(page, live, phones, clock, bob, tmp_path):
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg is missing (Debian package zbar-tools; `make test` installs it)")
    sign_in(page, "bob")
    page.get_by_label("Authenticator app (recommended)").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("img", name=re.compile("QR code")).wait_for()
    shot(page, "10-register-app")
    qr = tmp_path / "qr.png"
    page.locator("img.app-qr").screenshot(path=str(qr))
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(qr)], capture_output=True, text=True, check=True)
    uri = decoded.stdout.strip()
    assert uri.startswith("otpauth://totp/") and "issuer=Secure%20Sign-in" in uri
    page.get_by_text("I can't scan the QR code").click()
    typed = page.locator("#secret").inner_text().replace(" ", "")
    assert typed == secret_from_uri(uri)
    code = oathtool_code(secret_from_uri(uri), clock.now())
    page.get_by_label("Enter the 6-digit code your app now shows").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're set up").wait_for()


def test_changing_the_phone_number_needs_the_new_number_verified(page, live, phones, run, bob):
    add_phone(run, bob, "+447400123456", types=("sms", "voice"))
    sign_in(page, "bob")
    page.get_by_label("Code", exact=True).fill(texted_code(phones, "+447400123456"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("link", name="Security info").click()
    shot(page, "11-security-info")
    page.locator("dd", has_text="+44 •••• ••3456").locator("xpath=..").get_by_role("button", name="Change").click()
    page.get_by_label("Phone number").fill("07400 654321")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/verify")
    security = requests.Session()
    assert "+44 •••• ••3456" in page.evaluate("fetch('/security-info').then(r => r.text())")  # not saved yet
    page.get_by_label("Code", exact=True).fill(texted_code(phones, "+447400654321"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("Your security info has been saved.").wait_for()
    content = page.content()
    assert "+44 •••• ••4321" in content and "••3456" not in content
    security.close()


def test_changes_need_a_recent_sign_in(page, live, phones, run, clock, bob):
    add_phone(run, bob, "+447400123456", types=("sms", "voice"))
    sign_in(page, "bob")
    page.get_by_label("Code", exact=True).fill(texted_code(phones, "+447400123456"))
    page.get_by_role("button", name="Verify").click()
    page.get_by_text("You're signed in").wait_for()
    clock.advance(minutes=11)
    page.goto("/security-info")
    page.get_by_role("button", name="Save language").click()
    page.wait_for_url(re.compile(r".*/sign-in\?next=(%2F|/)security-info$"))
    assert "sign in again" in page.content()


def test_creating_and_revoking_an_app_password(page, live, dave):
    sign_in(page, "dave")
    page.get_by_text("You're signed in").wait_for()
    page.get_by_role("link", name="App passwords").click()
    page.get_by_label("Name").fill("Outlook on my laptop")
    page.get_by_role("button", name="Create app password").click()
    app_password = page.locator("#app-password").inner_text().strip()
    shot(page, "12-app-password-created")
    assert live.api.post("/app-passwords/verify", {"username": "dave", "app_password": app_password}).status_code == 200
    page.get_by_role("link", name="Done").click()
    shot(page, "13-app-passwords")
    page.get_by_role("link", name="Revoke Outlook on my laptop").click()
    page.get_by_role("button", name="Revoke app password").click()  # after "Are you sure…?"
    page.get_by_text("has been revoked").wait_for()
    assert live.api.post("/app-passwords/verify", {"username": "dave", "app_password": app_password}).status_code == 401


def test_a_form_posted_without_its_csrf_token_is_refused(live, dave):
    response = requests.post(f"{live.url}/sign-in", data={"username": "dave", "password": PASSWORD}, timeout=10)
    assert response.status_code == 400
    assert "Your form could not be sent" in response.text and "CSRF" not in response.text  # the service's page
    assert "session" not in response.cookies or not response.cookies.get("session")


def test_pages_send_security_headers(live):
    response = requests.get(f"{live.url}/sign-in", timeout=10)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in response.text  # no inline script: only <script src=…>


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(page, live, dave, next_url):
    page.goto(f"/sign-in?next={requests.utils.quote(next_url)}")
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("You're signed in").wait_for()
    assert page.url.startswith(live.url)


def test_pages_fit_a_phone_screen(browser, live, bob):
    context = browser.new_context(viewport={"width": 360, "height": 740}, base_url=live.url, is_mobile=True)
    page = context.new_page()
    sign_in(page, "bob")
    page.wait_for_url("**/register")
    shot(page, "14-phone-width-register")
    context.close()


def test_sign_out_everywhere_signs_out_another_browser_too(browser, page, live, dave):
    other = browser.new_context(base_url=live.url)
    phone = other.new_page()
    for each in (page, phone):
        sign_in(each, "dave")
        each.get_by_text("You're signed in").wait_for()
    page.goto("/security-info")
    shot(page, "15-security-info-sign-out-everywhere")
    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_text("You have been signed out everywhere").wait_for()
    phone.goto("/account")
    phone.wait_for_url(re.compile(r".*/sign-in\?next=(%2F|/)account$"))
    other.close()
