"""End to end: many people signing in by phone call at once, through the Twilio stand-in.

Each sign-in is what a relying application and a person do: the password (production
argon2), a call challenge, the stand-in rings the number, the person answers and presses
#, and the application polls until approved. The stand-in (standin) walks every call
through the server's real webhooks from its one worker thread, as documented there, so
its webhooks to the server are sent one at a time.
"""
from __future__ import annotations

import asyncio
import json
import time

from bench import load
from bench.scenarios import Context
from bench.seed import PASSWORD, Account

POLL_SECONDS = 0.2
SIGN_IN_TIMEOUT = 120.0


async def _call_to(network, number: str) -> str:
    while True:
        calls = network.calls(to=number)
        if calls:
            return calls[-1].sid
        await asyncio.sleep(0.01)


async def _sign_in(ctx: Context, network, person: Account, result: load.Result) -> None:
    # A connection per sign-in would sit idle while the phone rings, and gunicorn closes idle
    # keep-alive connections after a few seconds: a new one per request, as most clients do.
    conn = load.Connection(ctx.port, keep_alive=False)
    started = time.perf_counter()
    try:
        status, body = await conn.exchange(ctx.api("POST", "/authentications",
                                                   {"username": person.username, "password": PASSWORD}))
        if status != 201:
            return result.fail(f"password: HTTP {status} {body[:200]!r}")
        auth_id = json.loads(body)["id"]
        status, body = await conn.exchange(ctx.api("POST", f"/authentications/{auth_id}/challenges",
                                                   {"method_id": person.voice_method_id}))
        if status != 201:
            return result.fail(f"challenge: HTTP {status} {body[:200]!r}")
        sid = await asyncio.wait_for(_call_to(network, person.number), 10)
        for action in (lambda: network.answer(sid), lambda: network.press(sid, "#")):
            await asyncio.to_thread(action)
        while True:
            status, body = await conn.exchange(ctx.api("GET", f"/authentications/{auth_id}"))
            state = json.loads(body).get("status") if status == 200 else None
            if state == "approved":
                result.latencies.append(time.perf_counter() - started)
                return
            if state not in ("pending", "mfa_required"):
                return result.fail(f"ended {state}: {body[:200]!r}")
            await asyncio.sleep(POLL_SECONDS)
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, KeyError, ValueError) as exc:
        result.fail(f"{type(exc).__name__}: {exc}")
    finally:
        await conn.close()


async def _all(ctx: Context, network, people: list[Account]) -> load.Result:
    result = load.Result(f"end to end: {len(people)} concurrent sign-ins by call", concurrency=len(people))
    started = time.perf_counter()
    tasks = [asyncio.create_task(_sign_in(ctx, network, person, result)) for person in people]
    done, late = await asyncio.wait(tasks, timeout=SIGN_IN_TIMEOUT)
    for task in late:
        task.cancel()
        result.fail("not approved within the time limit")
    result.elapsed = time.perf_counter() - started
    return result


def sign_ins_by_call(ctx: Context, network) -> load.Result:
    network.reset()
    result = asyncio.run(_all(ctx, network, ctx.people))
    network.wait_idle(timeout=30)
    return result
