"""Throw-away PostgreSQL and Redis servers that a test may stop and start at will.

Each lives in its own temporary folder on a free port: the machine's own servers are never
touched. A test that cannot find the binaries skips, saying which one is missing.
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


# Below Linux's ephemeral range (32768-60999): the kernel never hands these to outgoing
# connections, so a port found free stays free until the server a test starts binds it.
_TEST_PORTS = range(20000, 32000)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (e.g. a dev server and its stand-in on PORT+1)."""
    for _ in range(1000):
        first = random.choice(_TEST_PORTS[:-count])
        if all(_bindable(first + step) for step in range(count)):
            return first
    raise RuntimeError("no free ports between 20000 and 32000")


def free_port() -> int:
    return free_ports(1)


def _missing(*paths: str | Path) -> str | None:
    for path in paths:
        if not (Path(path).exists() if os.sep in str(path) else shutil.which(str(path))):
            return f"{path} not found"
    return None


class TempPostgres:
    """initdb + pg_ctl in a folder of its own. initdb refuses root, so under root (CI) every
    server command runs as the `postgres` user, in a folder that user owns."""

    def __init__(self):
        self.port = free_port()
        as_root = os.geteuid() == 0
        missing = _missing(PG_BIN / "initdb", PG_BIN / "pg_ctl", *(["runuser"] if as_root else []))
        if missing:
            pytest.skip(f"no throw-away PostgreSQL: {missing}")
        self._as = ["runuser", "-u", "postgres", "--"] if as_root else []
        # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="mfa-outage-pg-"))
        if as_root:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args) -> None:
        subprocess.run([*self._as, *map(str, args)], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.folder / "log",
                  "-w", "-t", "30", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)


class TempRedis:
    """redis-server on a free port, in the foreground as a child process, saving nothing."""

    def __init__(self):
        missing = _missing("redis-server")
        if missing:
            pytest.skip(f"no throw-away Redis: {missing}")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.client().ping() is not True:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def client(self):
        import redis

        class Quiet(redis.Redis):
            def ping(self, **kwargs):
                try:
                    return super().ping(**kwargs)
                except redis.ConnectionError:
                    return False

        return Quiet.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
