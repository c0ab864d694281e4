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
    ratio_target: bool = False  # this scenario must reach half the reference's throughput
    p99_target: bool = False  # this scenario's p99 must stay under 50 ms
    peak_rss: dict[int, float] = field(default_factory=dict)
    comparable: bool = True  # False: not requests (e.g. whole sign-ins), so no ratio to the reference


def machine(database: str) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return (f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB RAM; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; {database}")


def table(rows: list[Row], reference_rps: float) -> tuple[str, list[str]]:
    """The table as Markdown, and the targets missed (empty when every one held).

    Ratios divide by `reference_rps`: the mean of the reference runs before and after the
    scenarios, since a shared machine drifts during a run.
    """
    missed = []
    lines = ["| scenario | requests | conc. | req/s | ratio to reference | p50 ms | p99 ms | errors "
             "| peak worker RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        r = row.result
        ratio = r.rps / reference_rps if reference_rps and r.rate is None else float("nan")
        peak = max(row.peak_rss.values(), default=float("nan"))
        marks = []
        if row.ratio_target and r.rate is None and not ratio >= RATIO_TARGET:
            marks.append("ratio")
        if row.p99_target and not r.percentile(99) <= VOICE_P99_LIMIT:
            marks.append("p99")
        if r.errors:
            marks.append("errors")
        if peak >= MB_LIMIT:
            marks.append("RSS")
        missed += [f"{r.name}: {m}" for m in marks]
        flag = f" **missed: {', '.join(marks)}**" if marks else ""
        conc = f"{r.concurrency} (open loop)" if r.rate else str(r.concurrency)
        shown_ratio = "-" if r.rate or not row.comparable else f"{ratio:.2f}"
        lines.append(f"| {r.name}{flag} | {r.count} | {conc} | {r.rps:.0f} | {shown_ratio} | "
                     f"{r.percentile(50) * 1000:.1f} | {r.percentile(99) * 1000:.1f} | {r.errors} | {peak:.0f} |")
    return "\n".join(lines), missed


def errors(rows: list[Row]) -> str:
    return "\n".join(f"  {row.result.name}: {sample}" for row in rows for sample in row.result.error_samples)
