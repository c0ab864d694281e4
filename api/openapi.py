"""The OpenAPI 3.1 description of /api/v1, served at GET /api/v1/openapi.json.

Built from the same constants the server checks input against (lengths, kinds, statuses),
so the description cannot drift from the code; tests/test_openapi.py runs schemathesis
against a live server with it. docs/api.md is the prose for people.
"""
from __future__ import annotations

from api.json_input import MAX_DEPTH
from mfa import limits
from mfa.checks import MAX_CODE_LENGTH
from mfa.recovery_codes import COUNT as RECOVERY_CODE_COUNT
from mfa.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from mfa.method_types import AppCode, PushApp
from mfa.phone_registration import DELIVERIES
from mfa.push_enrolment import ENROLMENT_TTL, MAX_DEVICES
from models.states import CHALLENGE_ONLY, AuthStatus, Reason
from models.method import METHOD_TYPES, PHONE_KINDS
from models.user import LANGUAGES

ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "32 lower-case hex digits."}
RECOVERY_CODE_PATTERN = "^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){2}$"  # mfa/recovery_codes.py
# Text the server can store and hash: not empty, no NUL (other control characters are refused later).
NO_NUL = "^[^\\u0000]+$"


def text(max_length: int, description: str | None = None) -> dict:
    out = {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NO_NUL}
    return {**out, "description": description} if description else out


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


NO_STORE = {"$ref": "#/components/headers/CacheControl"}


def answer(description: str, schema: dict, **headers) -> dict:
    return {"description": description, "headers": {"Cache-Control": NO_STORE, **headers},
            "content": json_content(schema)}


def error(description: str, **headers) -> dict:
    return answer(description, ref("Error"), **headers)


ERRORS = {
    "400": error("`bad_request` (not a JSON object, nested too deep, a field missing or of the wrong type, "
                 "a registration `type` other than `phone`, `totp` or `push`); `invalid_code` with `attempts_left`."),
    "401": error("`invalid_api_key` (no valid `Authorization: Bearer` key); `invalid_credentials`."),
    "404": error("`not_found`: no such authentication, or one another API key (or the server's own "
                 "pages) started."),
    "409": error("`not_pending`: the sign-in is not waiting for that step; `device_not_enrolled`: a push "
                 "challenge to a phone app whose set-up link has not been opened yet; `not_approved` or "
                 "`too_old`: recovery codes asked for before the sign-in was approved or 10 minutes after; "
                 "`second_factor_needed`: recovery codes after a sign-in not approved with the person's phone "
                 "or app; `account_blocked` / `account_locked`: recovery codes while the person is "
                 "fraud-blocked or locked; `backup_used_recently`: recovery codes within 24 hours of a "
                 "recovery code or pass signing the person in."),
    "413": error("`too_large`: the body is over 64 KiB."),
    "422": error("Well-formed but not possible, e.g. `invalid_number`, `sms_needs_mobile`, "
                 "`unknown_method`, `no_challenge_needed`, `too_many_devices` (a person has at most "
                 f"{MAX_DEVICES} phone apps) (see docs/api.md)."),
    "423": error("`locked` (account locked or fraud-blocked); `too_many_attempts`."),
    "429": error("`rate_limited` with `retry_after` seconds (also the `Retry-After` header): a limit of "
                 "`GET /limits` was reached, e.g. requests per API key, password checks per API key or per "
                 "person and address, texts and calls too close or too many, push requests over the fatigue "
                 f"limits (by default {limits.BY_NAME[limits.PUSH_REQUESTS].default} per person in "
                 f"{limits.BY_NAME[limits.PUSH_REQUESTS].window_seconds // 60} minutes).",
                 **{"Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}}),
    "503": error("`provider_unavailable` (the telephone service cannot be reached, or did not confirm "
                 "the call: then a number-matched call's `number_match` is included) or `unavailable` "
                 "(the database); try again shortly."),
}


def errors(*statuses: str) -> dict:
    return {status: {"$ref": f"#/components/responses/E{status}"} for status in statuses}


def body(schema: dict) -> dict:
    return {"required": True, "content": json_content(schema)}


AUTH_ID = {"name": "auth_id", "in": "path", "required": True, "schema": ID,
           "description": "The `id` from `POST /authentications`, started with the same API key."}

# Where an authentication's id (and its first method's id) lead: schemathesis follows these.
AUTH_LINKS = {
    "GetAuthentication": {"operationId": "getAuthentication", "parameters": {"auth_id": "$response.body#/id"}},
    "StartChallenge": {"operationId": "createChallenge", "parameters": {"auth_id": "$response.body#/id"},
                       "requestBody": {"method_id": "$response.body#/methods/0/id"}},
    "CheckCode": {"operationId": "createCheck", "parameters": {"auth_id": "$response.body#/id"}},
    "Register": {"operationId": "createRegistration", "parameters": {"auth_id": "$response.body#/id"}},
}


def operation(op_id: str, summary: str, responses: dict, *, request: dict | None = None,
              path_id: bool = False, description: str | None = None) -> dict:
    # Every operation counts against the API key's limits (GET /limits): any may answer 429.
    out = {"operationId": op_id, "summary": summary, "responses": {**responses, **errors("429")}}
    if description:
        out["description"] = description
    if path_id:
        out["parameters"] = [AUTH_ID]
    if request is not None:
        out["requestBody"] = body(request)
    return out


SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "A stable code, e.g. `invalid_code`."},
            "message": {"type": "string", "description": "A sentence you can show people."},
            "field": {"type": "string", "description": "The request field at fault (some 400s)."},
            "attempts_left": {"type": "integer", "minimum": 0},
            "retry_after": {"type": "integer", "minimum": 1, "description": "Seconds (429)."},
            "limit": {"type": "string", "description": "On a 429 from a limit of `GET /limits`: its `name`."},
            "number_match": {"type": "string", "pattern": "^[1-8][0-9]$",
                             "description": "On a 503 `provider_unavailable` to a number-matched call's challenge: "
                                            "the call may still ring, and asks for these digits; show them."},
        },
    },
    "Method": {
        "type": "object", "required": ["id", "type", "label", "default"],
        "properties": {
            "id": ID, "type": {"enum": list(METHOD_TYPES)},
            "label": {"type": "string", "description": "Masked, e.g. `+44 •••• ••3456`; a phone app "
                                                      "(`push`): `Mobile app: <device name>`."},
            "default": {"type": "boolean"},
        },
    },
    "Authentication": {
        "type": "object", "required": ["id", "status", "reason", "expires_at", "methods"],
        "properties": {
            "id": ID,
            "status": {"enum": [status.value for status in AuthStatus]},
            "reason": {"type": ["string", "null"],
                       "enum": [*(reason.value for reason in Reason if reason not in CHALLENGE_ONLY), None],
                       "description": "Why it was approved or denied, e.g. `verified`, `no_answer`, "
                                      "`no_response` (a push unanswered: another challenge may follow), "
                                      "`push_denied`, `number_mismatch` (see docs/api.md). `null` while open."},
            "expires_at": {"type": "string", "format": "date-time"},
            "attempts_left": {"type": "integer", "minimum": 0},
            "methods": {"type": "array", "items": ref("Method"),
                        "description": "The person's verified methods (empty while registering)."},
        },
    },
    "Challenge": {
        "type": "object", "required": ["status", "method_id", "type", "expires_at"],
        "properties": {
            "status": {"const": "pending"}, "method_id": ID, "type": {"enum": [*DELIVERIES, PushApp.name]},
            "expires_at": {"type": "string", "format": "date-time",
                           "description": "A push request lives 2 minutes (then `denied` / `no_response`)."},
            "number_match": {"type": "string", "pattern": "^[1-8][0-9]$",
                             "description": "Always on a `push`, and on a call to a person whose role has "
                                            "`CALL_APPROVAL=number`: two digits to show large on the sign-in "
                                            "screen; the person types them in the phone app, or keys them on "
                                            "the call (`#` does not approve it)."},
            "notice": {"type": "string", "description": "Registration of a number outside the UK: charges may apply."},
        },
    },
    "TotpEnrolment": {
        "type": "object", "required": ["method_id", "otpauth_uri"],
        "properties": {"method_id": ID, "otpauth_uri": {"type": "string", "pattern": "^otpauth://totp/"}},
    },
    "PushEnrolment": {
        "type": "object", "required": ["method_id", "enrolment_url", "expires_at"],
        "properties": {
            "method_id": {**ID, "description": "Challenge it once the phone has opened the link: its approval "
                                               "registers the app."},
            "enrolment_url": {"type": "string", "pattern": "^https?://[^#]+/app#enrol=[A-Za-z0-9_-]+$",
                              "description": "`{PUBLIC_BASE_URL}/app#enrol=<token>`: show it as a QR code and a "
                                             "link. Single use; the token is in the fragment (docs/push.md)."},
            "expires_at": {"type": "string", "format": "date-time",
                           "description": f"When the link stops working ({ENROLMENT_TTL.seconds // 60} minutes)."},
        },
    },
    "AuthenticationRequest": {
        "type": "object", "required": ["username", "password"],
        "properties": {"username": text(254), "password": text(MAX_PASSWORD_LENGTH)},
    },
    "ChallengeRequest": {
        "type": "object", "required": ["method_id"],
        "properties": {"method_id": {**ID, "description": "One of the authentication's `methods`."}},
    },
    "CheckRequest": {
        "type": "object", "required": ["code"],
        "properties": {"code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE_LENGTH,
                                "description": "A texted or app code, a recovery code or a temporary "
                                               "access pass; spaces are ignored."}},
    },
    "PhoneRegistrationRequest": {
        "type": "object", "required": ["type", "number", "kind", "delivery"],
        "properties": {
            "type": {"const": "phone"},
            "number": {"type": "string", "description": "E.164 or national UK, e.g. `07400 123456`."},
            "kind": {"enum": list(PHONE_KINDS)},
            "delivery": {"enum": list(DELIVERIES)},
            "language": {"enum": list(LANGUAGES), "description": "What calls to this person will speak."},
        },
    },
    "TotpRegistrationRequest": {
        "type": "object", "required": ["type"], "properties": {"type": {"const": AppCode.name}},
    },
    "PushRegistrationRequest": {
        "type": "object", "required": ["type"], "properties": {"type": {"const": PushApp.name}},
    },
    "AppPasswordRequest": {
        "type": "object", "required": ["username", "app_password"],
        "properties": {"username": text(254), "app_password": text(200)},
    },
    "Limit": {
        "type": "object", "required": ["name", "counts", "per", "window_seconds", "limit", "effect", "setting"],
        "properties": {
            "name": {"enum": [limit.name for limit in limits.CATALOGUE]},
            "counts": {"type": "string", "description": "What is counted, for people."},
            "per": {"enum": sorted({limit.per for limit in limits.CATALOGUE})},
            "window_seconds": {"type": "integer", "minimum": 0,
                               "description": "The window; 0 for a count of failures in a row."},
            "limit": {"type": "integer", "minimum": 1, "description": "The number in force."},
            "effect": {"type": "string", "description": "`rate_limited` (429), or what happens instead, "
                                                        "e.g. `locked`, `push_paused`, `telephony_off`."},
            "setting": {"type": "string", "description": "The environment variable that sets it."},
        },
    },
}

PATHS = {
    "/authentications": {"post": operation(
        "createAuthentication", "Check the first factor and start a sign-in",
        {"201": {**answer("The sign-in; `status` says what it needs next.", ref("Authentication")),
                 "links": AUTH_LINKS},
         **errors("400", "401", "413", "423", "503")},
        request=ref("AuthenticationRequest"),
    )},
    "/authentications/{auth_id}": {"get": operation(
        "getAuthentication", "The sign-in as it is now (poll it during a call or a push)",
        {"200": answer("The sign-in.", ref("Authentication")), **errors("401", "404", "503")},
        path_id=True,
    )},
    "/authentications/{auth_id}/challenges": {"post": operation(
        "createChallenge", "Send a text, place a call or send a push request to one of the person's methods",
        {"201": answer("Sent; a pending challenge replaces any earlier one. A push carries `number_match`.",
                       ref("Challenge")),
         **errors("400", "401", "404", "409", "413", "422", "423", "429", "503")},
        request=ref("ChallengeRequest"), path_id=True,
    )},
    "/authentications/{auth_id}/checks": {"post": operation(
        "createCheck", "Check a texted code, an app code, a recovery code or a temporary access pass",
        {"200": answer("Approved.", ref("Authentication")),
         **errors("400", "401", "404", "409", "413", "422", "423", "429", "503")},
        request=ref("CheckRequest"), path_id=True,
    )},
    "/authentications/{auth_id}/recovery-codes": {"post": operation(
        "createRecoveryCodes", "A new set of recovery codes for the person, after a sign-in with their phone or app",
        {"201": answer("Ten single-use codes, shown once; the person's earlier set no longer works.",
                       {"type": "object", "required": ["codes"],
                        "properties": {"codes": {"type": "array", "minItems": RECOVERY_CODE_COUNT,
                                                 "maxItems": RECOVERY_CODE_COUNT,
                                                 "items": {"type": "string", "pattern": RECOVERY_CODE_PATTERN}}}}),
         **errors("401", "404", "409", "503")},
        path_id=True,
        description="Only on a sign-in approved with `reason` `verified` (the person's phone or app) less "
                    "than 10 minutes ago; otherwise 409 `not_approved` (not approved), `too_old` (approved 10 "
                    "minutes ago or more), `second_factor_needed` (approved by `mfa_not_required`, "
                    "`recovery_code` or `access_pass`), `account_blocked` (fraud-blocked), "
                    "`account_locked` (locked out) or `backup_used_recently` (a recovery code or pass signed "
                    "the person in during the last 24 hours).",
    )},
    "/authentications/{auth_id}/registrations": {"post": operation(
        "createRegistration", "Register a phone, an authenticator app or a phone app (push) while "
        "`registration_required`",
        {"201": answer("A phone: the code or call is on its way. An app: scan `otpauth_uri`, then "
                       "send a code to `/checks`. A phone app: open `enrolment_url` on the phone, then "
                       "start a challenge to `method_id` and have the person type its `number_match`.",
                       {"anyOf": [ref("Challenge"), ref("TotpEnrolment"), ref("PushEnrolment")]}),
         **errors("400", "401", "404", "409", "413", "422", "423", "429", "503")},
        request={"oneOf": [ref("PhoneRegistrationRequest"), ref("TotpRegistrationRequest"),
                           ref("PushRegistrationRequest")]}, path_id=True,
    )},
    "/app-passwords/verify": {"post": operation(
        "verifyAppPassword", "Check an app password (for mail gateways)",
        {"200": answer("It is valid.", {"type": "object", "required": ["valid"],
                                        "properties": {"valid": {"const": True}}}),
         **errors("400", "401", "413", "503")},
        request=ref("AppPasswordRequest"),
    )},
    "/openapi.json": {"get": operation(
        "getOpenApi", "This description",
        {"200": answer("OpenAPI 3.1.", {"type": "object", "required": ["openapi", "info", "paths"]}),
         **errors("401", "503")},
    )},
    "/limits": {"get": operation(
        "getLimits", "Every limit in force: what it counts, per what, its window and its number",
        {"200": answer("One entry per limit (docs/limits.md).",
                       {"type": "object", "required": ["limits"],
                        "properties": {"limits": {"type": "array", "items": ref("Limit")}}}),
         **errors("401", "503")},
    )},
}


def description() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Second-factor sign-in API",
            "version": "1",
            "description": (
                "For relying applications. Every request carries `Authorization: Bearer <api key>` "
                "(`flask --app app apikeys create NAME`). Bodies are JSON objects of at most 64 KiB, "
                f"nested at most {MAX_DEPTH} levels. An authentication belongs to the API key that "
                "started it: any other key gets 404 for it. Every answer carries "
                "`Cache-Control: no-store`. See docs/api.md."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key from `apikeys create`."}},
            "headers": {"CacheControl": {"required": True, "schema": {"const": "no-store"},
                                         "description": "No API answer may be stored."}},
            "schemas": SCHEMAS,
            "responses": {f"E{status}": response for status, response in ERRORS.items()},
        },
    }
