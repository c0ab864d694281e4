"""A browser's steps through the sign-in pages, with a Flask test client as the browser.

Two test clients are two browsers; copying a cookie from one to the other is a replay.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.helpers import pyotp_code
from tests.personas import PASSWORD

COOKIE = "session"


def csrf_token(client: Any, path: str = "/sign-in") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, "no CSRF token on " + path
    return found.group(1)


def post_form(client: Any, path: str, data: dict | None = None, token_from: str = "/sign-in", **kwargs: Any) -> Any:
    """Post with the CSRF token of `token_from` (the sign-in page unless told)."""
    return client.post(path, data={"csrf_token": csrf_token(client, token_from), **(data or {})}, **kwargs)


def password_step(client: Any, username: str, next_url: str | None = None) -> Any:
    data = {"username": username, "password": PASSWORD}
    if next_url is not None:
        data["next"] = next_url
    return post_form(client, "/sign-in", data)


def app_step(client: Any, secret: str, clock: Any) -> Any:
    """Submit the app code on /verify; the browser then follows to wherever the page sends it."""
    return post_form(client, "/verify/code", {"code": pyotp_code(secret, clock.now())}, token_from="/verify")


def cookie(client: Any) -> str | None:
    found = client.get_cookie(COOKIE)
    return found.value if found else None


def replay(cookie_value: str | None, app: Any) -> Any:
    """Another browser holding a copy of the cookie."""
    other = app.test_client()
    if cookie_value is not None:
        other.set_cookie(COOKIE, cookie_value)
    return other


def signed_in(client: Any) -> bool:
    response = client.get("/account")
    return response.status_code == 200 and "Sign out" in response.get_data(as_text=True)


# --- accessibility: axe-core (npm devDependency, installed by `make test` with nhsuk-frontend) ---

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Any) -> list[dict] | None:
    """axe-core's findings (every rule it runs by default) on the page as it is now; None when
    the page is between documents (a navigation under way), which has nothing to check yet.

    Injected with evaluate, which the pages' Content-Security-Policy does not govern."""
    assert AXE.exists(), f"{AXE} is missing: run `make test` (or `npm install`) to install axe-core"
    if page.evaluate("document.readyState") != "complete":
        return None
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    return _own_rule_violations(page) + _axe_run(page)


# The service's own rules, which axe-core does not check: every error-summary link lands on
# something that takes focus; a page showing an error says so first in its title.
OWN_RULES = """() => {
    const found = [];
    const focusable = 'input:not([type=hidden]):not([disabled]), select:not([disabled]), '
        + 'textarea:not([disabled]), button:not([disabled]), a[href], [tabindex]';
    document.querySelectorAll('.nhsuk-error-summary a[href^="#"]').forEach(a => {
        const target = document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)));
        if (!target || !target.matches(focusable)) {
            found.push({id: 'app-error-link-target', impact: 'serious',
                        help: 'An error-summary link must land on a field that takes focus',
                        nodes: [a.getAttribute('href') + (target ? ' (' + target.tagName + ')' : ' (missing)')]});
        }
    });
    const shown = document.querySelector('.nhsuk-error-summary, .nhsuk-error-message');
    if (shown && !document.title.startsWith('Error: ')) {
        found.push({id: 'app-error-title', impact: 'serious',
                    help: 'A page showing an error starts its title with "Error: "', nodes: [document.title]});
    }
    return found;
}"""


def _own_rule_violations(page: Any) -> list[dict]:
    return page.evaluate(OWN_RULES)


def _axe_run(page: Any) -> list[dict]:
    # One run at a time per page (the load watcher and a test's own check may overlap).
    return page.evaluate("""() => {
        const run = () => axe.run(document, {resultTypes: ['violations']});
        window.__axeRuns = (window.__axeRuns || Promise.resolve()).catch(() => null).then(run);
        return window.__axeRuns.then(r => r.violations.map(v => (
            {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})));
    }""")


def _described(state: str, found: list[dict]) -> str:
    return f"axe-core on {state}:\n" + "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'])}" for v in found)


def assert_accessible(page: Any, state: str = "") -> None:
    """Fail on any axe-core violation, naming the page state and each offending element."""
    page.wait_for_load_state()
    found = axe_violations(page)
    assert found is not None, f"{state or page.url} is still loading"
    assert not found, _described(state or page.url, found)


class AxeWatch:
    """Checks every page each watched browser context loads, and the page as the test leaves it.

    A check cut short because the test already moved the page on is dropped (the next load is
    checked); what is found is kept for `assert_clean` at the end of the test."""

    def __init__(self) -> None:
        self.findings: list[str] = []
        self.checked = 0
        self.headings: dict[str, str] = {}  # each title seen, and the heading it came with
        self.contexts: list[Any] = []

    def watch(self, context: Any) -> Any:
        self.contexts.append(context)
        context.on("page", lambda page: page.on("load", self._check))
        return context

    def _check(self, page: Any) -> None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            url = page.url
            found = axe_violations(page)
            title, heading = page.evaluate("[document.title, (document.querySelector('h1') || {}).innerText || '']")
        except PlaywrightError:  # navigated away or closed mid-check
            return
        if found is None:
            return
        self.checked += 1
        if found:
            self.findings.append(_described(url, found))
        # Unique titles (WCAG 2.4.2): one title never names two different pages.
        heading = " ".join(heading.split())
        if self.headings.setdefault(title, heading) != heading:
            self.findings.append(f"title {title!r} on {url} is shared by pages headed "
                                 f"{self.headings[title]!r} and {heading!r}")

    def check_open_pages(self) -> None:
        """Check each page as the test leaves it (before its context closes)."""
        for context in self.contexts:
            for page in context.pages:
                self._check(page)

    def assert_clean(self) -> None:
        self.check_open_pages()
        assert not self.findings, "\n".join(self.findings)


class WatchedBrowser:
    """A Playwright browser whose every new context is watched by `watch`."""

    def __init__(self, browser: Any, watch: AxeWatch) -> None:
        self._browser, self.axe = browser, watch

    def new_context(self, **options: Any) -> Any:
        context = self._browser.new_context(**options)
        # No internet here: the NHS font host (allowed by the pages' CSP) would hang each page's
        # "load" on a DNS lookup. Refused at once instead; a test that wants the font routes it itself.
        context.route("https://assets.nhs.uk/**", lambda route: route.abort())
        return self.axe.watch(context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)
