"""The service's own page for every error a browser can meet, each with a way forward.

The API, the Twilio webhooks and the operators' endpoints keep the answers their callers read
(JSON, TwiML, plain text): for those paths the handlers installed before these still answer.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from edge import database_unavailable, is_database_outage
from web.flow import safe_next, signed_in_user_id

log = logging.getLogger("mfa.web")

# Read by programs, not people: their errors stay in the form those programs expect.
MACHINE_PATHS = ("/api/", "/device/", "/twilio/", "/voice-prompts/", "/healthz", "/readyz", "/metrics", "/bench/")


@dataclass(frozen=True)
class ErrorPage:
    heading: str
    paragraphs: tuple[str, ...]
    back: bool = False  # the way forward is the page the person came from (a form to send again)


PAGES: dict[int, ErrorPage] = {
    400: ErrorPage("Sorry, we could not understand that", (
        "Something in what your browser sent was not right.",
        "Go back, reload the page and try again.")),
    403: ErrorPage("You cannot use this page", (
        "You do not have permission to see it. If you think you should, sign in again or "
        "contact your administrator.",)),
    404: ErrorPage("Page not found", (
        "If you typed the web address, check it is correct.",
        "If you pasted the web address, check you copied the entire address.")),
    405: ErrorPage("This page cannot be opened directly", (
        "This web address only works when you send a form. If you bookmarked it or reloaded it, "
        "start again from the page with the form.",)),
    413: ErrorPage("What you sent is too long", (
        "The form you sent was larger than this service accepts. Nothing was saved.",
        "Go back, check what you entered and try again."), back=True),
    429: ErrorPage("You've tried too many times", (
        "To keep your account safe, we have paused this for a short time. Nothing was saved.",
        "Wait a minute, then try again."), back=True),
    500: ErrorPage("Sorry, there is a problem with the service", (
        "Try again in a few minutes.",
        "If it keeps happening, contact your administrator.")),
    503: ErrorPage("Sorry, the service is unavailable", (
        "Try again in a few minutes.",)),
}
# A form whose security token is missing or stale: the session ended (signed out in another tab,
# left open too long) or the page came from somewhere else.
CSRF = ErrorPage("Your form could not be sent", (
    "The page was open too long, or you signed out in another tab. Nothing was saved or changed.",
    "Go back, reload the page and try again."), back=True)
OTHER = ErrorPage("Sorry, we could not do that", ("Go back and try again.",), back=True)


def for_a_browser(path: str) -> bool:
    return not path.startswith(MACHINE_PATHS) and path != "/api"


def install(app: Flask) -> None:
    """Take over the app's HTTP-error and crash handlers for pages; other paths keep the ones before."""
    before = dict(app.error_handler_spec[None][None])
    machine_http, machine_crash = before.get(HTTPException), before.get(Exception)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # The database failing outside a view (opening or saving a session) arrives wrapped in a 500.
        original = getattr(exc, "original_exception", None)
        if is_database_outage(original):
            return database_unavailable(original)
        if not for_a_browser(request.path):
            return machine_http(exc) if machine_http else exc
        page = CSRF if isinstance(exc, CSRFError) else PAGES.get(exc.code or 500, OTHER)
        response = error_page(page, exc.code or 500)
        for name, value in exc.get_headers():  # a 405's Allow, a 429's Retry-After
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        if not for_a_browser(request.path) and machine_crash is not None:
            return machine_crash(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_page(PAGES[500], 500)


def error_page(page: ErrorPage, status: int) -> Response:
    try:
        signed_in = signed_in_user_id() is not None
        html = render_template("error.html", page=page, back=_came_from() if page.back else None,
                               signed_in=signed_in)
    except Exception:  # the layout itself failed (the session could not be read): the bare words
        log.exception("the error page could not be drawn")
        paragraphs = "".join(f"<p>{p}</p>" for p in page.paragraphs)
        html = (f'<!DOCTYPE html><html lang="en-GB"><title>{page.heading}</title><h1>{page.heading}</h1>'
                f'{paragraphs}<p><a href="/">Go to the start</a></p>')
    return Response(html, status, mimetype="text/html")


def _came_from() -> str | None:
    """The same-site page the person was on (browsers send it: Referrer-Policy same-origin)."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc != request.host:
        return None
    return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
