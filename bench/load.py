"""The load generator: keep-alive HTTP/1.1 over asyncio streams, closed loop, loopback only.

Each of `concurrency` connections sends the next prepared request as soon as its previous
answer has arrived, until every request has been sent or `duration` has passed, so a run
always stops by itself. Requests are built before the clock starts (signatures included),
so the generator spends its CPU on sockets, not on preparing work; it shares the machine
with the server, which lowers every scenario and the reference alike.
"""
from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Sequence
from urllib.parse import urlencode

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Request:
    raw: bytes
    expect: int  # the status a correct answer has
    must_contain: bytes = b""  # and a fragment its body must hold (voice webhooks answer 200 even on errors)


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    concurrency: int = 0
    rate: float | None = None  # requests per second offered (open loop); None: closed loop

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies) if self.latencies else float("nan")

    def fail(self, why: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(why[:300])


def build(method: str, path: str, port: int, *, headers: dict | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def form(params: dict) -> bytes:
    return urlencode(params).encode()


class Connection:
    """One keep-alive connection; reconnects when the server closes it."""

    def __init__(self, port: int, *, keep_alive: bool = True):
        self.port = port
        self.keep_alive = keep_alive
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(LOOPBACK, self.port)
        self.writer.write(raw)
        head = await self._reader().readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        if b"transfer-encoding: chunked" in lowered:
            body = await self._chunked()
        else:
            marker = lowered.find(b"content-length:")
            length = int(lowered[marker + 15:lowered.index(b"\r\n", marker)]) if marker >= 0 else 0
            body = await self._reader().readexactly(length) if length else b""
        if not self.keep_alive or b"connection: close" in lowered:
            await self.close()
        return status, body

    def _reader(self) -> asyncio.StreamReader:
        assert self.reader is not None, "exchange() connects first"
        return self.reader

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self._reader().readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await self._reader().readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(chunk[:-2])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def run(name: str, port: int, requests: Sequence[Request], *, concurrency: int, duration: float,
              rate: float | None = None) -> Result:
    """Send `requests` in order over `concurrency` connections; stop when done or out of time.

    Closed loop by default: each connection sends again as soon as it has its answer, so the
    server runs flat out and latency includes queueing. With `rate`, request i is due at
    start + i/rate (an open loop, like independent calls' webhooks) and its latency counts
    from when it was due, so a server falling behind shows it (no coordinated omission).
    """
    result = Result(name, concurrency=concurrency, rate=rate)
    next_index = 0
    started = time.perf_counter()
    deadline = started + duration

    async def connection_loop() -> None:
        nonlocal next_index
        conn = Connection(port)
        try:
            while next_index < len(requests) and time.perf_counter() < deadline:
                index, next_index = next_index, next_index + 1
                request = requests[index]
                sent = time.perf_counter()
                if rate:
                    due = started + index / rate
                    if due > sent:
                        await asyncio.sleep(due - sent)
                    sent = due
                try:
                    status, body = await conn.exchange(request.raw)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    result.latencies.append(time.perf_counter() - sent)
                    result.fail(f"connection: {type(exc).__name__}")
                    await conn.close()
                    continue
                result.latencies.append(time.perf_counter() - sent)
                if status != request.expect or request.must_contain not in body:
                    result.fail(f"HTTP {status}: {body[:200]!r}")
        finally:
            await conn.close()

    await asyncio.gather(*(connection_loop() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    return result
