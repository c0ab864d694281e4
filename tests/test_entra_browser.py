"""Entra external MFA in Chromium: Microsoft's page posts the person to us (cross-site), the call is
answered with #, and our page posts the id_token back to Microsoft by itself.

Microsoft's two pages are played with Playwright's request routing: nothing leaves the machine.
Screenshots go to $SCREENSHOT_DIR when set; axe-core checks every page the browser loads.
"""
from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from mfa.entra import links
from tests.conftest import run_in
from tests.entra_fixture import PATH, REDIRECT_URI, TENANT
from tests.entra_fixture import entra  # noqa: F401  (fixtures)
from tests.personas import ALICE, PASSWORD
from tests.test_pages_browser import (  # noqa: F401  (browser, chromium, page: fixtures used here)
    CHROMIUM, browser, chromium, page, shot)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian package chromium; `make test` installs it)")
MICROSOFT = "https://login.microsoftonline.com"
PAGE = ("<!doctype html><html lang='en'><head><title>{title}</title></head><body><main><h1>{title}</h1>{body}"
        "</main></body></html>")


@pytest.fixture
def app_config(app_config, entra):
    return {**app_config, **entra.settings}


def microsoft(page, live, form: dict[str, str]) -> list[dict[str, list[str]]]:
    """Microsoft's side: a page that posts `form` to our authorization endpoint as Entra's does, and the
    return address, which records what our page posts to it."""
    received: list[dict[str, list[str]]] = []
    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in form.items())
    start = PAGE.format(title="Verifying with your provider", body=(
        f'<form method="post" action="{live.url}{PATH}/authorize">{fields}<button>Continue</button></form>'))

    def route(route):
        request = route.request
        if request.url.startswith(REDIRECT_URI) and request.method == "POST":
            received.append(parse_qs(request.post_data or ""))
            return route.fulfill(content_type="text/html", body=PAGE.format(title="Signed in", body="<p>Done.</p>"))
        return route.fulfill(content_type="text/html", body=start)

    page.route(f"{MICROSOFT}/**", route)
    page.goto(f"{MICROSOFT}/start")
    return received


def test_microsoft_sends_the_person_here_and_gets_a_token_back_by_itself(page, live, phones, entra, alice, clock):
    hint = entra.hint(clock.now())
    run_in(live.app, lambda db, svc: links.link(db, svc, alice.username, TENANT, hint.oid))
    form = entra.form(hint)
    received = microsoft(page, live, form)
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()  # cross-site POST, as from Microsoft
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    shot(page, "27-entra-verify-call")
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    page.wait_for_url(REDIRECT_URI)  # the page saw the approval and posted the answer by itself
    assert len(received) == 1
    posted = {name: values[0] for name, values in received[0].items()}
    assert posted["state"] == form["state"] and "error" not in posted
    claims = entra.validate(live.app.test_client(), posted["id_token"], form=form, hint=hint, now=clock.now())
    assert claims["amr"] == ["tel"]


def test_cancelling_tells_microsoft_the_person_was_not_verified(page, live, phones, entra, alice, clock):
    hint = entra.hint(clock.now())
    run_in(live.app, lambda db, svc: links.link(db, svc, alice.username, TENANT, hint.oid))
    form = entra.form(hint)
    received = microsoft(page, live, form)
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(REDIRECT_URI)
    assert len(received) == 1
    posted = {name: values[0] for name, values in received[0].items()}
    assert posted["error"] == "access_denied" and posted["state"] == form["state"] and "id_token" not in posted


def test_without_scripts_the_answer_waits_for_a_button(page, live, phones, entra, alice, clock):
    hint = entra.hint(clock.now())
    run_in(live.app, lambda db, svc: links.link(db, svc, alice.username, TENANT, hint.oid))
    form = entra.form(hint)
    page.route("**/static/web/app.js", lambda route: route.abort())  # a browser that runs no script of ours
    received = microsoft(page, live, form)
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    page.goto("/verify")  # what "Check again" does on the call page without scripts
    page.get_by_role("heading", name="You're verified").wait_for()
    shot(page, "28-entra-verified-no-script")
    assert received == []  # nothing went without the person's press
    with page.expect_navigation():
        page.get_by_role("button", name="Continue to Microsoft").click()
    assert len(received) == 1 and "id_token" in received[0]


def test_the_first_time_the_person_links_their_microsoft_account_with_their_password(page, live, phones, entra,
                                                                                     alice, clock):
    hint = entra.hint(clock.now(), preferred_username="alice")
    form = entra.form(hint)
    received = microsoft(page, live, form)
    with page.expect_navigation():
        page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Sign in to link your Microsoft account").wait_for()
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("There is a problem").wait_for()
    shot(page, "29-entra-link-wrong-password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Your phone is ringing").wait_for()
    phones.wait_idle()
    sid = phones.calls(to=ALICE)[-1].sid
    phones.answer(sid)
    phones.press(sid, "#")
    phones.wait_idle()
    page.wait_for_url(REDIRECT_URI)
    assert len(received) == 1 and "id_token" in received[0]
    linked = run_in(live.app, lambda db, svc: getattr(links.person(db, TENANT, hint.oid), "username", None))
    assert linked == "alice"
