"""The scenarios: what each one sends, and what a correct answer looks like.

Every request is built (and signed) before its run starts. Sign-ins and challenges are
seeded through the domain just before the scenario that uses them, since they expire.
"""
from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field

import pyotp
from twilio.request_validator import RequestValidator

from bench import load
from bench.load import Request
from bench.seed import PASSWORD, Account, Seeder
from settings import SIMULATOR_ACCOUNT_SID, SIMULATOR_FROM_NUMBER


@dataclass
class Context:
    port: int
    public_base_url: str
    api_key: str
    seeder: Seeder
    accounts: list[Account]  # many, for app codes, calls and texts
    people: list[Account]  # production argon2 passwords, for the password and end-to-end scenarios
    concurrency: int
    duration: float
    requests: int
    voice_rate: float = 0.0  # requests per second offered to the voice webhooks in their steady runs
    auth_token: str = ""  # the server's TWILIO_AUTH_TOKEN (made per run): what webhooks are signed with
    bare_port: int = 0  # the bare reference's gunicorn (bench/bare_app.py)
    validator: RequestValidator = field(init=False)

    def __post_init__(self) -> None:
        self.validator = RequestValidator(self.auth_token)

    def api(self, method: str, path: str, body: dict | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return load.build(method, "/api/v1" + path, self.port, headers=headers, body=data)

    def webhook(self, path: str, params: dict) -> bytes:
        """A Twilio webhook signed for PUBLIC_BASE_URL + path, as Twilio would sign it."""
        signature = self.validator.compute_signature(self.public_base_url + path, params)
        return load.build("POST", path, self.port, body=load.form(params), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": "bench"})

    def run(self, name: str, requests: list[Request], *, rate: float | None = None) -> load.Result:
        return asyncio.run(load.run(name, self.port, requests, concurrency=self.concurrency,
                                    duration=self.duration, rate=rate))


def call_params(call_sid: str, to: str, **extra) -> dict:
    """What Twilio posts to a voice webhook (the usual set, so signatures cost what they cost)."""
    return {"AccountSid": SIMULATOR_ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid,
            "CallStatus": "in-progress", "Called": to, "Caller": SIMULATOR_FROM_NUMBER,
            "Direction": "outbound-api", "From": SIMULATOR_FROM_NUMBER, "To": to, "ToCountry": "GB",
            "FromCountry": "GB", **extra}


# --- the scenarios --------------------------------------------------------------------------


def reference(ctx: Context, name: str = "reference: one row by primary key") -> load.Result:
    users = itertools.cycle([a.user_id for a in ctx.accounts])
    requests = [Request(load.build("GET", f"/bench/reference/{next(users)}", ctx.port), 200, b'"role"')
                for _ in range(ctx.requests)]
    return ctx.run(name, requests)


def bare_reference(ctx: Context, name: str = "bare reference: Flask + SQLAlchemy, one row") -> load.Result:
    """The same request to bench/bare_app.py: the same stack without the project's middleware."""
    from bench.bare_app import BARE_PATH

    users = itertools.cycle([a.user_id for a in ctx.accounts])
    requests = [Request(load.build("GET", f"{BARE_PATH}{next(users)}", ctx.bare_port), 200, b'"role"')
                for _ in range(ctx.requests)]
    return asyncio.run(load.run(name, ctx.bare_port, requests, concurrency=ctx.concurrency, duration=ctx.duration))


def warm_up(ctx: Context) -> None:
    """Every worker thread, connection pool and lazy import touched once before measuring."""
    users = itertools.cycle([a.user_id for a in ctx.accounts])
    requests = [Request(load.build("GET", f"/bench/reference/{next(users)}", ctx.port), 200) for _ in range(500)]
    ctx.run("warm-up", requests)
    if ctx.bare_port:
        bare_reference(ctx, "warm-up (bare)")


def passwords(ctx: Context) -> load.Result:
    people = itertools.cycle(ctx.people)
    requests = [Request(ctx.api("POST", "/authentications", {"username": p.username, "password": PASSWORD}),
                        201, b'"mfa_required"')
                for p in itertools.islice(people, ctx.requests)]
    return ctx.run("POST /authentications (argon2)", requests)


def polls(ctx: Context) -> load.Result:
    """The relying application polling sign-ins that wait for their second factor."""
    sign_ins = itertools.cycle(ctx.seeder.sign_ins(ctx.accounts[:200]))
    requests = [Request(ctx.api("GET", f"/authentications/{next(sign_ins)}"), 200, b'"mfa_required"')
                for _ in range(ctx.requests)]
    return ctx.run("GET /authentications/{id} (poll)", requests)


def totp_checks(ctx: Context) -> load.Result:
    people = ctx.accounts[:ctx.requests]
    sign_ins = ctx.seeder.sign_ins(people)
    requests = [Request(ctx.api("POST", f"/authentications/{auth_id}/checks",
                                {"code": pyotp.TOTP(person.totp_secret).now()}), 200, b'"approved"')
                for person, auth_id in zip(people, sign_ins, strict=True)]
    return ctx.run("POST /checks (TOTP)", requests)


def voice_calls(ctx: Context) -> tuple[load.Result, ...]:
    """The answer webhook for many calls, then the Gather action with # and the call's last
    status callback for the same calls: flat out (closed loop), then the answer and keys
    webhooks at a steady offered rate (open loop) on other calls."""
    paced = int(ctx.voice_rate * ctx.duration)
    people = ctx.accounts[:ctx.requests + paced]
    pending = list(zip(people, ctx.seeder.challenges(people, "voice"), strict=True))
    answers = [Request(ctx.webhook(f"/twilio/voice/answer?challenge={cid}", call_params(sid, p.number)),
                       200, b"<Gather")
               for p, (cid, sid) in pending]
    keys = [Request(ctx.webhook(f"/twilio/voice/keys?challenge={cid}",
                                call_params(sid, p.number, Digits="#", FinishedOnKey="")), 200, b"verified")
            for p, (cid, sid) in pending]
    statuses = [Request(ctx.webhook(f"/twilio/voice/status?challenge={cid}",
                                    call_params(sid, p.number, CallStatus="completed", CallDuration="9")), 204)
                for p, (cid, sid) in pending]
    flat_out = len(pending) - paced
    results = (ctx.run("voice answer webhook", answers[:flat_out]),
               ctx.run("voice <Gather> keys webhook (#)", keys[:flat_out]),
               ctx.run("voice status callback (completed)", statuses[:flat_out]))
    if not paced:
        return results
    return results + (ctx.run(f"voice answer webhook, {ctx.voice_rate:.0f}/s offered", answers[flat_out:],
                              rate=ctx.voice_rate),
                      ctx.run(f"voice keys webhook (#), {ctx.voice_rate:.0f}/s offered", keys[flat_out:],
                              rate=ctx.voice_rate))


def sms_status(ctx: Context) -> load.Result:
    """Two callbacks per text, as Twilio sends them: sent, then delivered (every tenth undelivered)."""
    people = ctx.accounts[:ctx.requests // 2]
    pending = ctx.seeder.challenges(people, "sms")
    requests = []
    for i, (person, (_cid, message_sid)) in enumerate(zip(people, pending, strict=True)):
        final = ({"MessageStatus": "undelivered", "ErrorCode": "30003"} if i % 10 == 9
                 else {"MessageStatus": "delivered"})
        for status in ({"MessageStatus": "sent"}, final):
            params = {"AccountSid": SIMULATOR_ACCOUNT_SID, "ApiVersion": "2010-04-01", "MessageSid": message_sid,
                      "SmsSid": message_sid, "SmsStatus": status["MessageStatus"], "From": SIMULATOR_FROM_NUMBER,
                      "To": person.number, **status}
            requests.append(Request(ctx.webhook("/twilio/sms/status", params), 204))
    return ctx.run("SMS status callback", requests)
