"""Remember this browser: the question after a second factor, the cookie, and forgetting one.

The cookie holds a random token and nothing else (mfa/remembered_browsers.py keeps its keyed
hash). It is SameSite=Strict: only the sign-in form, posted from this site, ever reads it.
"""
from __future__ import annotations

import re
from datetime import datetime

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from edge import client_ip, db, services
from edge_errors import status_for
from mfa import remembered_browsers
from mfa.errors import MfaError
from mfa.unit_of_work import use_case
from models import RememberedBrowser, User
from web import bp
from web.flow import REMEMBERED_SIGN_IN, safe_next, signed_in_recently, signed_in_user
from web.guards import login_required

OFFER = "remember_offer"  # in the session: this sign-in just passed a second factor
CHOICE_ERROR = "Select yes if you want us to remember this browser"
# The few browsers and systems worth naming in the person's list; anything else is "A browser".
BROWSERS = (("Edg/", "Microsoft Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
SYSTEMS = (("iPhone", "an iPhone"), ("iPad", "an iPad"), ("Android", "Android"), ("Windows", "Windows"),
           ("Mac OS X", "a Mac"), ("CrOS", "a Chromebook"), ("Linux", "Linux"))


def cookie_name() -> str:
    # __Host-: only ever set by this host over https, for the whole site (no Domain, Path=/).
    return "__Host-remember" if current_app.config["SESSION_COOKIE_SECURE"] else "remember"


def browser_token() -> str | None:
    """The remembered-browser token this browser sent, if any."""
    return request.cookies.get(cookie_name())


def browser_label(user_agent: str) -> str:
    """"Firefox on Windows": enough for a person to tell their browsers apart, nothing more kept."""
    browser = next((name for marker, name in BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in SYSTEMS if re.search(re.escape(marker), user_agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else "A browser")


def mark_remembered_sign_in() -> None:
    """This session skipped the second factor: it does not count as a recent sign-in for changes."""
    session[REMEMBERED_SIGN_IN] = True


def offer_after(next_url: str | None) -> bool:
    """Called once a sign-in passed a second factor: ask about remembering this browser, if the
    person's role allows it. True when the question is due (the caller redirects to it)."""
    user = signed_in_user()
    if user is None or services().policy.remember_days_for(user) <= 0:
        return False
    session[OFFER] = {"next": next_url}
    return True


@bp.route("/remember-browser", methods=["GET", "POST"])
@login_required("/account")
def remember_browser(user: User) -> ResponseReturnValue:
    """Only straight after a second factor, in the session that passed it (never from a
    remembered or a password-only sign-in)."""
    offer = session.get(OFFER)
    days = services().policy.remember_days_for(user)
    if not isinstance(offer, dict) or days <= 0 or not signed_in_recently():
        session.pop(OFFER, None)
        return redirect(url_for("web.account"))
    next_url = safe_next(offer.get("next")) or url_for("web.account")
    if request.method == "GET":
        return render_template("remember_browser.html", days=days, next_url=next_url)
    choice = request.form.get("remember")
    if choice not in ("yes", "no"):
        return render_template("remember_browser.html", days=days, next_url=next_url, error=CHOICE_ERROR,
                               field="remember-yes"), 400
    session.pop(OFFER, None)
    response = redirect(next_url)
    if choice == "no":
        return response
    try:
        with use_case(db()):
            token, ends = remembered_browsers.remember(db(), services(), user,
                                                       browser_label(request.headers.get("User-Agent", "")),
                                                       browser_token())
    except MfaError as refusal:
        return render_template("remember_browser.html", days=days, next_url=next_url, error=refusal.message,
                               field="remember-yes"), status_for(refusal)
    _set_cookie(response, token, ends)
    return response


@bp.post("/security-info/remembered-browsers/<browser_id>/forget")
@login_required("/security-info")
def forget_browser(user: User, browser_id: str) -> ResponseReturnValue:
    """No recent sign-in needed: forgetting a browser only ever asks for more."""
    try:
        with use_case(db()):
            row = remembered_browsers.forget(db(), services(), user, browser_id, client_ip())
        this_one = remembered_browsers.is_this_browser(services(), row, browser_token())
        flash(f"We'll ask for the second step again on {'this browser' if this_one else row.label}.", "success")
    except MfaError as refusal:
        flash(refusal.message, "error")
        this_one = False
    response = redirect(url_for("web.security_info"))
    if this_one:
        forget_cookie(response)
    return response


def remembered_for(user: User) -> list[tuple[RememberedBrowser, datetime, bool]]:
    """The person's remembered browsers for security info: each, when it stops, and whether it is this one."""
    token = browser_token()
    return [(row, ends, remembered_browsers.is_this_browser(services(), row, token))
            for row, ends in remembered_browsers.list_for(db(), services(), user)]


def _set_cookie(response: Response, token: str, ends: datetime) -> None:
    max_age = max(0, int((ends - services().clock.now()).total_seconds()))
    response.set_cookie(cookie_name(), token, max_age=max_age, path="/",
                        secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True, samesite="Strict")


def forget_cookie(response: Response) -> None:
    response.delete_cookie(cookie_name(), path="/", secure=current_app.config["SESSION_COOKIE_SECURE"],
                           httponly=True, samesite="Strict")
