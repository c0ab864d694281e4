"""Who a page is for: `login_required` for a signed-in person, `flow_required` for a sign-in under way.

The guarded view receives the person (or the sign-in) as its first argument; anyone else is
sent to the sign-in page, with `next` naming where to come back to.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from functools import wraps
from typing import Callable, Concatenate, ParamSpec

from flask import flash, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from edge import services
from mfa.authentications import can_continue
from models import Authentication, User
from web.flow import current_auth, signed_in_recently, signed_in_user

P = ParamSpec("P")
SIGN_IN_AGAIN = "For your security, sign in again before changing your security info."
# In the session: what a refused change posted, kept for its page after the person signs in again
# (web/change_window.py shows it filled in; nothing is applied until they select the button).
KEPT_FORM = "kept_form"
KEEP_FIELDS = 10
KEEP_CHARS = 200
NEVER_KEPT = ("csrf", "password", "code", "secret", "token")  # parts of a field name: never stored
KEEP_FOR = timedelta(minutes=15)  # long enough to sign in again; never a surprise days later


def login_required(next_url: str, *, recent: bool = False):
    """`recent`: changes need a sign-in within the last 10 minutes (else sign in again first)."""

    def decorate(view: Callable[Concatenate[User, P], ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            user = signed_in_user()
            if recent and (user is None or not signed_in_recently()):
                flash(SIGN_IN_AGAIN, "notice")
                if user is not None and request.method == "POST":
                    keep_form(user, next_url)
                user = None
            if user is None:
                return redirect(url_for("web.sign_in", next=next_url))
            return view(user, *args, **kwargs)

        return guarded

    return decorate


def keep_form(user: User, path: str) -> None:
    """Keep what a refused change posted (bounded; never a password, code or token) for `path`,
    this person only: web/change_window.py drops it if someone else signs in on this browser."""
    fields: dict[str, str] = {}
    for name, value in request.form.items():
        if len(fields) == KEEP_FIELDS:
            break
        if any(word in name.lower() for word in NEVER_KEPT) or len(name) > KEEP_CHARS or len(value) > KEEP_CHARS:
            continue
        fields[name] = value
    if fields:
        session[KEPT_FORM] = {"user": user.id, "path": path, "action": request.endpoint, "fields": fields,
                              "kept_at": services().clock.now().isoformat()}
    else:  # nothing typed or chosen (an "Add" button): an older kept form would only mislead
        session.pop(KEPT_FORM, None)


def kept_in_time(kept: dict) -> bool:
    """A kept form younger than KEEP_FOR; anything else (older, or without its time) is dropped."""
    try:
        return services().clock.now() - datetime.fromisoformat(kept["kept_at"]) < KEEP_FOR
    except (KeyError, TypeError, ValueError):
        return False


def _start_again() -> ResponseReturnValue:
    return redirect(url_for("web.sign_in"))


def flow_required(*, registering: bool = False, otherwise: Callable[[], ResponseReturnValue] = _start_again,
                  ended: bool = False):
    """`registering`: only a sign-in that is registering a method (first registration or a change).
    `otherwise` answers when there is none: by default, start signing in again.
    `ended`: the view also takes a sign-in that has ended (approved, expired, denied); any other
    view sends such a sign-in to the verify page, which finishes it or says what happened and
    what to do next, instead of a step that can no longer work."""

    def decorate(view: Callable[Concatenate[Authentication, P], ResponseReturnValue]
                 ) -> Callable[P, ResponseReturnValue]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            auth = current_auth()
            if auth is None or (registering and not auth.registering):
                return otherwise()
            if not ended and not can_continue(auth, services().clock.now()):
                return redirect(url_for("web.verify"))
            g.flow_auth = auth  # for the page's time limit (web/time_limit.py)
            return view(auth, *args, **kwargs)

        return guarded

    return decorate
