"""Each view parses JSON, runs one use case, and renders the result."""
from __future__ import annotations

from flask import g, jsonify

from api import bp, json_body, openapi
from api.serialize import authentication_json, challenge_json, iso
from edge import client_ip, db, services
from mfa import (app_passwords, authentications, challenges, checks, methods, phone_registration, push_enrolment,
                 recovery_codes)
from mfa.errors import BadRequest
from mfa.method_types import AppCode, PushApp
from mfa.unit_of_work import Transactions, use_case


@bp.post("/authentications")
def create_authentication():
    body = json_body()
    with use_case(db()):
        auth = authentications.start(db(), services(), body.get("username"), body.get("password"), client_ip(),
                                     api_key_id=g.api_key_id)
    return jsonify(authentication_json(auth)), 201


@bp.get("/authentications/<auth_id>")
def show_authentication(auth_id: str):
    with use_case(db()):
        auth = authentications.get(db(), services(), auth_id)
    return jsonify(authentication_json(auth))


@bp.post("/authentications/<auth_id>/challenges")
def create_challenge(auth_id: str):
    body = json_body()
    # Reserve, call the provider, record: each step commits (no transaction across the call).
    challenge = challenges.start_challenge(Transactions(db()), services(), auth_id, body.get("method_id"),
                                           client_ip())
    return jsonify(challenge_json(challenge)), 201


@bp.post("/authentications/<auth_id>/checks")
def create_check(auth_id: str):
    body = json_body()
    with use_case(db()):
        auth = checks.check_code(db(), services(), auth_id, body.get("code"), client_ip())
    return jsonify(authentication_json(auth))


@bp.post("/authentications/<auth_id>/recovery-codes")
def create_recovery_codes(auth_id: str):
    with use_case(db()):
        codes = recovery_codes.generate_after_sign_in(db(), services(), auth_id)
    return jsonify({"codes": codes}), 201


@bp.post("/authentications/<auth_id>/registrations")
def create_registration(auth_id: str):
    body = json_body()
    kind = body.get("type")
    if kind == "phone":  # a text or call: its own transactions (see mfa/challenges.py)
        registration = phone_registration.register_phone(
            Transactions(db()), services(), auth_id, body.get("number"), body.get("kind"),
            body.get("delivery"), client_ip(), language=body.get("language"),
        )
        result = challenge_json(registration.challenge)
        if registration.notice:
            result["notice"] = registration.notice
        return jsonify(result), 201
    with use_case(db()):
        if kind == PushApp.name:  # a set-up link for the phone app (mfa/push_enrolment.py)
            enrolment = push_enrolment.register_push(db(), services(), auth_id, client_ip())
            return jsonify({"method_id": enrolment.method.id, "enrolment_url": enrolment.url,
                            "expires_at": iso(enrolment.expires_at)}), 201
        if kind != AppCode.name:
            raise BadRequest(f"'type' must be 'phone', '{AppCode.name}' or '{PushApp.name}'.", field="type")
        method, uri = methods.register_totp(db(), services(), auth_id, client_ip())
    return jsonify({"method_id": method.id, "otpauth_uri": uri}), 201


@bp.post("/app-passwords/verify")
def verify_app_password():
    body = json_body()
    with use_case(db()):
        app_passwords.verify(db(), services(), body.get("username"), body.get("app_password"), client_ip())
    return jsonify({"valid": True})


@bp.get("/openapi.json")
def openapi_description():
    return jsonify(openapi.description())


@bp.get("/limits")
def published_limits():
    """Every limit in force, as enforced (docs/limits.md)."""
    return jsonify({"limits": services().limits.published()})
