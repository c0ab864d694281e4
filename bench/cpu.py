"""`python -m bench.cpu`: each hot request's own CPU and SQL statements, one at a time.

Drives the app (and the bare reference, bench/bare_app.py) through Flask's test client in
this process, so no sockets, gunicorn or load generator share the clock: CPU time per
request (time.process_time) is steady on a busy machine where wall-clock throughput is
not. Ratios are the bare (or in-stack) reference's CPU per request divided by the
scenario's, which is what throughput ratios tend to on a CPU-bound server.

    .venv/bin/python -m bench.cpu --database-url postgresql://.../mfa_bench   # or --db sqlite
    .venv/bin/python -m bench.cpu --profile totp                             # cProfile one scenario
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import itertools
import pstats
import re
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

import pyotp
from cryptography.fernet import Fernet
from sqlalchemy import event
from twilio.request_validator import RequestValidator

from bench import bare_app
from bench.database import prepare
from bench.scenarios import call_params
from bench.seed import Seeder, SeedTelephony
from bench.server import ROOT
from settings import SIMULATOR_ACCOUNT_SID

BASE_URL = "http://bench.invalid"
TOKEN = "bench-auth-token-not-secret"
ROUNDS = 4


@dataclasses.dataclass
class Measured:
    name: str
    cpu_ms: float
    statements: float


def arguments(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/mfa_bench")
    p.add_argument("--requests", type=int, default=200, help="requests per scenario (and accounts seeded)")
    p.add_argument("--profile", default="", help="a scenario name to run under cProfile (prints the top)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = arguments(argv)
    work = Path(tempfile.mkdtemp(prefix="mfa-bench-cpu-"))
    database_url, label = prepare(args.db, args.database_url, work)
    env = {"MFA_ENV": "development", "DATABASE_URL": database_url, "SECRET_KEY": "bench-secret-key",
           "DATA_KEY": Fernet.generate_key().decode(), "INSTANCE_PATH": str(work / "instance"),
           "PUBLIC_BASE_URL": BASE_URL, "TELEPHONY_PROVIDER": "simulator", "BENCH_REFERENCE_ENDPOINT": "true",
           "TWILIO_AUTH_TOKEN": TOKEN}
    seeder = Seeder(env)
    api_key = seeder.api_key("bench")
    n = args.requests
    started = time.perf_counter()
    accounts = seeder.accounts("cpu", range(n))
    print(f"{label}; seeded {n} accounts in {time.perf_counter() - started:.0f} s", flush=True)

    app = seeder.app  # the app under test: the same settings as the server the bench starts
    rt = app.extensions["mfa"]
    rt.services = dataclasses.replace(rt.services, telephony=SeedTelephony())  # end_call reaches nobody
    client = app.test_client()
    bare = bare_app.create_app(database_url).test_client()
    validator = RequestValidator(TOKEN)
    bearer = {"Authorization": f"Bearer {api_key}"}

    def webhook(path: str, params: dict):
        sig = validator.compute_signature(BASE_URL + path, params)
        return lambda: client.post(path, data=params, headers={"X-Twilio-Signature": sig})

    def check(auth_id: str, secret: str):
        # The code is made when sent (about 40 µs, counted): a round can outlast a code's 30 s.
        return client.post(f"/api/v1/authentications/{auth_id}/checks", json={"code": pyotp.TOTP(secret).now()},
                           headers=bearer)

    users = itertools.cycle([a.user_id for a in accounts])
    polls = seeder.sign_ins(accounts[:20])
    voice = seeder.challenges(accounts, "voice")
    texts = seeder.challenges(accounts, "sms")
    sign_ins = seeder.sign_ins(accounts)
    cycle_polls = itertools.cycle(polls)
    scenarios: list[tuple[str, list[Callable], bytes]] = [
        ("bare reference", [partial(bare.get, bare_app.BARE_PATH + u) for u in itertools.islice(users, n)],
         b'"role"'),
        ("in-stack reference", [partial(client.get, f"/bench/reference/{u}") for u in itertools.islice(users, n)],
         b'"role"'),
        ("poll GET /authentications/{id}", [partial(client.get, f"/api/v1/authentications/{a}", headers=bearer)
                                            for a in itertools.islice(cycle_polls, n)], b'"mfa_required"'),
        ("TOTP check", [partial(check, a, person.totp_secret) for a, person in zip(sign_ins, accounts, strict=True)],
         b'"approved"'),
        ("voice answer", [webhook(f"/twilio/voice/answer?challenge={cid}", call_params(sid, a.number))
                          for a, (cid, sid) in zip(accounts, voice, strict=True)], b"<Gather"),
        ("voice keys (#)", [webhook(f"/twilio/voice/keys?challenge={cid}",
                                    call_params(sid, a.number, Digits="#", FinishedOnKey=""))
                            for a, (cid, sid) in zip(accounts, voice, strict=True)], b"verified"),
        ("voice status (completed)", [webhook(f"/twilio/voice/status?challenge={cid}",
                                              call_params(sid, a.number, CallStatus="completed"))
                                      for a, (cid, sid) in zip(accounts, voice, strict=True)], b""),
        ("SMS status (delivered)", [webhook("/twilio/sms/status", sms_params(sid, a.number, "delivered"))
                                    for a, (_c, sid) in zip(accounts, texts, strict=True)], b""),
        ("SMS status (undelivered)", [webhook("/twilio/sms/status", sms_params(sid, a.number, "undelivered"))
                                      for a, (_c, sid) in zip(accounts, texts, strict=True)], b""),
    ]
    engines = [rt.engine]
    # In rounds, each scenario a slice at a time, keeping each one's cheapest slice: other
    # work on a shared machine slows a slice down, never speeds one up.
    best: dict[str, Measured] = {}
    for part in range(ROUNDS):
        for name, calls, want in scenarios:
            chunk = calls[part * len(calls) // ROUNDS:(part + 1) * len(calls) // ROUNDS]
            m = measure(name, chunk, want, engines, args.profile if part == ROUNDS - 1 else "")
            if name not in best or m.cpu_ms < best[name].cpu_ms:
                best[name] = m
    results = [best[name] for name, _calls, _want in scenarios]
    print(table(results))
    seeder.close()
    return 0


def sms_params(sid: str, to: str, status: str) -> dict:
    extra = {"ErrorCode": "30003"} if status == "undelivered" else {}
    return {"AccountSid": SIMULATOR_ACCOUNT_SID, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
            "SmsStatus": status, "To": to, **extra}


def measure(name: str, calls: list[Callable], want: bytes, engines, profile: str) -> Measured:
    statements = 0

    def count(*_args) -> None:
        nonlocal statements
        statements += 1

    profiler = cProfile.Profile(time.process_time) if profile and profile.lower() in name.lower() else None
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.process_time()
        if profiler:
            profiler.enable()
        for call in calls:
            response = call()
            if response.status_code >= 300 or want not in response.data:
                raise SystemExit(f"{name}: unexpected answer {response.status_code} {response.data[:200]!r}")
        if profiler:
            profiler.disable()
        cpu = time.process_time() - started
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(re.escape(str(ROOT)) + r"/(?!\.venv)", 30)  # the project's own
        stats.sort_stats("tottime").print_stats(30)  # the hottest functions anywhere
        print(out.getvalue())
    # The bare app has its own engine: its one statement per request is not counted above.
    return Measured(name, cpu / len(calls) * 1000, statements / len(calls) if name != "bare reference" else 1.0)


def table(results: list[Measured]) -> str:
    bare, stack = results[0].cpu_ms, results[1].cpu_ms
    lines = ["| request | SQL statements | CPU ms per request | ratio to bare | ratio to in-stack reference |",
             "|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.statements:.1f} | {r.cpu_ms:.2f} | {bare / r.cpu_ms:.2f} "
                     f"| {stack / r.cpu_ms:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
