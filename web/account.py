"""The signed-in account page and app passwords."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import flash, redirect, render_template, request, session, url_for

from edge import db, services
from edge_errors import status_for
from mfa import app_passwords
from mfa.errors import MfaError
from mfa.unit_of_work import use_case
from models import User
from web import bp
from web.guards import login_required

JUST_CREATED = "app_password_created"  # session key: the new app password, until its page is shown
# Past this, a new app password left in the session (its page never opened) is dropped, not shown.
SHOWN_WITHIN = timedelta(minutes=10)
NO_LONGER_SHOWN = ("Your new app password “{name}” can no longer be shown. If you did not copy it, revoke it "
                   "and create another.")


@bp.get("/account")
@login_required("/account")
def account(user: User):
    return render_template("account.html", user=user)


@bp.get("/app-passwords")
@login_required("/app-passwords")
def app_password_list(user: User):
    return render_template("app_passwords.html", user=user, rows=app_passwords.list_for(db(), user))


@bp.post("/app-passwords")
@login_required("/app-passwords", recent=True)  # a lasting mail login: only after a second factor, lately
def app_password_create(user: User):
    name = request.form.get("name", "")
    try:
        with use_case(db()):
            row, plaintext = app_passwords.create(db(), services(), user, name)
    except MfaError as refusal:
        return render_template("app_passwords.html", user=user, rows=app_passwords.list_for(db(), user),
                               error=refusal.message, name=name), status_for(refusal)
    # Post/redirect/get: reloading the page that shows it must not create another. It waits for
    # that one page encrypted under DATA_KEY in the server-side session, and is gone once shown.
    session[JUST_CREATED] = {"id": row.id, "secret": services().vault.encrypt(plaintext).decode(),
                             "created_at": services().clock.now().isoformat()}
    return redirect(url_for("web.app_password_created"), 303)


@bp.get("/app-passwords/created")
@login_required("/app-passwords")
def app_password_created(user: User):
    created = session.pop(JUST_CREATED, None)
    if created is None:  # a reload, or Back: shown once only
        flash("An app password is shown only once. If you did not copy it, revoke it and create another.",
              "notice")
        return redirect(url_for("web.app_password_list"))
    try:
        row = app_passwords.find(db(), user, created["id"])
    except MfaError:  # revoked in another tab meanwhile
        return redirect(url_for("web.app_password_list"))
    if not _shown_in_time(created):  # dropped (popped above) rather than shown long after
        flash(NO_LONGER_SHOWN.format(name=row.name), "notice")
        return redirect(url_for("web.app_password_list"))
    return render_template("app_password_created.html", name=row.name,
                           app_password=services().vault.decrypt(created["secret"].encode()))


@bp.before_request
def _drop_a_stale_app_password() -> None:
    """Past SHOWN_WITHIN the new app password leaves the session at the next page view, whichever page
    (not left there for the session's remaining hours); its own page says it can no longer be shown."""
    created = session.get(JUST_CREATED)
    if created is not None and request.endpoint != "web.app_password_created" and not _shown_in_time(created):
        session.pop(JUST_CREATED)


def _shown_in_time(created: dict) -> bool:
    """Created less than SHOWN_WITHIN ago; one stored without its time (older sessions) is not shown."""
    try:
        at = datetime.fromisoformat(created["created_at"])
    except (KeyError, TypeError, ValueError):
        return False
    return services().clock.now() - at < SHOWN_WITHIN


@bp.get("/app-passwords/<app_password_id>/revoke")
@login_required("/app-passwords")
def app_password_revoke_confirm(user: User, app_password_id: str):
    try:
        row = app_passwords.find(db(), user, app_password_id)
    except MfaError as refusal:
        flash(refusal.message, "error")
        return redirect(url_for("web.app_password_list"))
    return render_template("app_password_revoke.html", row=row)


@bp.post("/app-passwords/<app_password_id>/revoke")
@login_required("/app-passwords")
def app_password_revoke(user: User, app_password_id: str):
    try:
        with use_case(db()):
            row = app_passwords.revoke(db(), services(), user, app_password_id)
        flash(f"“{row.name}” has been revoked. Mail programs using it can no longer open your mail.", "success")
    except MfaError as refusal:
        flash(refusal.message, "error")
    return redirect(url_for("web.app_password_list"))


