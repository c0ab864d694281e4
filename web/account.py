"""The signed-in account page and app passwords."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from edge import db, services
from edge_errors import status_for
from mfa import app_passwords
from mfa.errors import MfaError
from mfa.unit_of_work import use_case
from models import User
from web import bp
from web.guards import login_required


@bp.get("/account")
@login_required("/account")
def account(user: User):
    return render_template("account.html", user=user)


@bp.get("/app-passwords")
@login_required("/app-passwords")
def app_password_list(user: User):
    return render_template("app_passwords.html", user=user, rows=app_passwords.list_for(db(), user))


@bp.post("/app-passwords")
@login_required("/app-passwords")
def app_password_create(user: User):
    name = request.form.get("name", "")
    try:
        with use_case(db()):
            row, plaintext = app_passwords.create(db(), services(), user, name)
    except MfaError as refusal:
        return render_template("app_passwords.html", user=user, rows=app_passwords.list_for(db(), user),
                               error=refusal.message, name=name), status_for(refusal)
    return render_template("app_password_created.html", name=row.name, app_password=plaintext)


@bp.post("/app-passwords/<app_password_id>/revoke")
@login_required("/app-passwords")
def app_password_revoke(user: User, app_password_id: str):
    try:
        with use_case(db()):
            app_passwords.revoke(db(), services(), user, app_password_id)
        flash("The app password has been revoked. Programs using it can no longer open your mail.", "success")
    except MfaError as refusal:
        flash(refusal.message, "error")
    return redirect(url_for("web.app_password_list"))


