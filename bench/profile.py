"""`python -m bench --profile`: py-spy samples every gunicorn worker while each scenario runs.

Only the thread holding the GIL is sampled (py-spy --gil): with several threads per worker
the others are mostly waiting for it, and would hide where the CPU goes.

Writes collapsed stacks (py-spy's raw format, one file per scenario and worker, readable by
speedscope or flamegraph.pl) and prints where the workers spent their samples: the
project's own functions (inclusive) and the hottest leaf functions anywhere (exclusive).
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path

from bench.server import ROOT

IDLE = ("wait (threading.py", "select (selectors.py", "poll (selectors.py", "_worker (concurrent",
        "run_for_one", "accept (", "sleep (", "murder_keepalived")


def py_spy() -> str | None:
    local = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binary = py_spy()
        if self.binary is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install -r requirements-dev.txt")
        self._running: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, pids: list[int]) -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
        for pid in pids:
            out = self.directory / f"{slug}-{pid}.txt"
            process = subprocess.Popen([str(self.binary), "record", "--pid", str(pid), "--rate", "250",
                                        "--format", "raw",
                                        "--gil", "--nonblocking", "--full-filenames", "--output", str(out)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._running.append((process, out))

    def stop(self) -> str:
        stacks: Counter[str] = Counter()
        for process, out in self._running:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
            if out.exists():
                for line in out.read_text().splitlines():
                    stack, _, count = line.rpartition(" ")
                    if stack and count.isdigit():
                        stacks[stack] += int(count)
        self._running = []
        return summary(stacks)


def summary(stacks: Counter[str], top: int = 12) -> str:
    busy = Counter({s: n for s, n in stacks.items() if not any(idle in s.rsplit(";", 1)[-1] for idle in IDLE)})
    total = sum(busy.values()) or 1
    own: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for stack, count in busy.items():
        frames = stack.split(";")
        leaves[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames if str(ROOT) in f and "/.venv/" not in f}:
            own[frame] += count
    lines = [f"    busy samples: {total}", "    project functions (inclusive):"]
    lines += [f"      {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["    hottest leaf functions (exclusive):"]
    lines += [f"      {n / total:6.1%}  {f}" for f, n in leaves.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    return frame.replace(str(ROOT) + "/", "").replace(".venv/lib/python3.11/site-packages/", "")
