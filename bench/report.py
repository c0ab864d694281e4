"""The machine, the results table, and which targets held."""
from __future__ import annotations

import os
import platform
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import Result

MB_LIMIT = 150
STARTUP_LIMIT = 3.0
RATIO_TARGET = 0.5
VOICE_P99_LIMIT = 0.050


@dataclass
class Row:
    result: Result
    ratio_target: bool = False  # this scenario must reach half the bare reference's throughput
    p99_target: bool = False  # this scenario's p99 must stay under 50 ms at the offered rate (open loop)
    peak_rss: dict[int, float] = field(default_factory=dict)
    comparable: bool = True  # False: not requests (e.g. whole sign-ins), so no ratio to the reference


def machine(database: str) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return (f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB RAM; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; {database}")


def table(rows: list[Row], reference_rps: float, bare_rps: float = 0.0) -> tuple[str, list[str], list[str]]:
    """The table as Markdown, the targets missed and the targets held.

    Ratios divide by the mean of the reference runs before and after the scenarios (a
    shared machine drifts during a run): `reference_rps` the in-stack reference
    (ops/reference.py), `bare_rps` the bare one (bench/bare_app.py), which the ratio
    targets are measured against.
    """
    missed: list[str] = []
    held: list[str] = []
    lines = ["| scenario | requests | conc. | req/s | ratio to bare | ratio to in-stack reference | p50 ms "
             "| p99 ms | errors | peak worker RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        r = row.result
        closed = r.rate is None and row.comparable
        ratio = r.rps / reference_rps if reference_rps and closed else float("nan")
        to_bare = r.rps / bare_rps if bare_rps and closed else float("nan")
        peak = max(row.peak_rss.values(), default=float("nan"))
        checks = []  # (target, held?)
        if row.ratio_target and closed:
            checks.append((f"ratio to bare {to_bare:.2f} (target {RATIO_TARGET})", to_bare >= RATIO_TARGET))
        if row.p99_target and r.rate is not None:
            p99 = r.percentile(99)
            checks.append((f"p99 {p99 * 1000:.1f} ms (target {VOICE_P99_LIMIT * 1000:.0f} ms)", p99 <= VOICE_P99_LIMIT))
        checks.append(("no errors", not r.errors))
        if row.peak_rss:
            checks.append((f"peak RSS {peak:.0f} MB (target < {MB_LIMIT} MB)", peak < MB_LIMIT))
        marks = [what for what, ok in checks if not ok]
        missed += [f"{r.name}: {m}" for m in marks]
        held += [f"{r.name}: {what}" for what, ok in checks if ok and what != "no errors" and "RSS" not in what]
        flag = f" **missed: {', '.join(marks)}**" if marks else ""
        conc = f"{r.concurrency} (open loop)" if r.rate else str(r.concurrency)
        shown = ("-", "-") if not closed else (f"{to_bare:.2f}" if bare_rps else "-", f"{ratio:.2f}")
        lines.append(f"| {r.name}{flag} | {r.count} | {conc} | {r.rps:.0f} | {shown[0]} | {shown[1]} | "
                     f"{r.percentile(50) * 1000:.1f} | {r.percentile(99) * 1000:.1f} | {r.errors} | {peak:.0f} |")
    return "\n".join(lines), missed, held


def errors(rows: list[Row]) -> str:
    return "\n".join(f"  {row.result.name}: {sample}" for row in rows for sample in row.result.error_samples)
