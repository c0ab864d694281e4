"""Start the app under gunicorn on a free loopback port, as production would run it.

Used by the benchmark and by the scale-out and multiprocess-metrics tests. The process is
started with the settings given as environment variables and the production gunicorn
config (ops/gunicorn_config.py); stop() ends it (and its workers) by its own process group.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import BinaryIO
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Gunicorn:
    def __init__(self, env: dict, *, workers: int = 2, threads: int = 4, port: int | None = None,
                 log_path: Path | None = None, app_spec: str = "app:create_app()"):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.workers = workers
        self.threads = threads
        self.log_path = log_path
        self.app_spec = app_spec  # what gunicorn serves: the app, or bench/bare_app.py
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._launched = 0.0
        self._log: BinaryIO | int | None = None
        self._peaks: dict[int, float] = {}
        self._sampling = threading.Event()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "-c", "python:ops.gunicorn_config",
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                "--threads", str(self.threads), "--no-control-socket", self.app_spec]

    def launch(self) -> "Gunicorn":
        """Start the process without waiting (start several, then wait_ready() on each)."""
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._launched = time.perf_counter()
        self.process = subprocess.Popen(self.command(), cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=self._log, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 20.0) -> "Gunicorn":
        """Until GET /readyz answers 200; startup_seconds counts from launch()."""
        assert self.process is not None, "launch() first"
        while time.perf_counter() - self._launched < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    self.startup_seconds = time.perf_counter() - self._launched
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"gunicorn not ready after {timeout}s; see {self.log_path}")

    def start(self, timeout: float = 20.0) -> "Gunicorn":
        return self.launch().wait_ready(timeout)

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        pids = []
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = status.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(status.parent.name))
        return sorted(pids)

    def worker_rss_mb(self) -> dict[int, float]:
        return {pid: mb for pid in self.worker_pids() if (mb := rss_mb(pid)) is not None}

    # --- peak resident memory while a scenario runs ---

    def sample_peaks(self, interval: float = 0.1) -> None:
        """Start sampling worker RSS in the background; take_peaks() stops and returns the peaks."""
        self._peaks = {}
        self._sampling.set()

        def sample():
            while self._sampling.is_set():
                for pid, mb in self.worker_rss_mb().items():
                    self._peaks[pid] = max(mb, self._peaks.get(pid, 0.0))
                time.sleep(interval)

        threading.Thread(target=sample, daemon=True, name="rss-sampler").start()

    def take_peaks(self) -> dict[int, float]:
        self._sampling.clear()
        time.sleep(0.15)
        return dict(self._peaks)

    def stop(self) -> None:
        self._sampling.clear()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None and not isinstance(self._log, int):  # an int is subprocess.DEVNULL
            self._log.close()

    def __enter__(self) -> "Gunicorn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
