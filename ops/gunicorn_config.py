"""gunicorn settings for production: `gunicorn -c python:ops.gunicorn_config 'app:create_app()'`.

Command-line flags override these. What this adds to plain gunicorn is Prometheus
multiprocess housekeeping: when PROMETHEUS_MULTIPROC_DIR is set, the directory is emptied
at start (values left by an earlier run would be added to this one's) and a worker's
files are marked dead when it exits.
"""
from __future__ import annotations

import os
from pathlib import Path

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
# Twilio and the proxy reuse connections; a little longer than gunicorn's 2 s default.
keepalive = 5


def _multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def on_starting(server) -> None:
    _check_settings()
    directory = _multiproc_dir()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.db"):
            leftover.unlink()


def post_fork(server, worker) -> None:
    _return_big_allocations_to_the_system()


def _return_big_allocations_to_the_system() -> None:
    """Keep each worker's memory flat after password checks.

    argon2 allocates 19 MiB per check. glibc serves large blocks with mmap, but after the
    first free it raises its mmap threshold, so later blocks come from per-thread arenas
    and stay resident. A fixed threshold keeps them mmapped and given back on free.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        m_mmap_threshold, m_arena_max = -3, -8
        libc.mallopt(m_mmap_threshold, 128 * 1024)
        libc.mallopt(m_arena_max, 2)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def child_exit(server, worker) -> None:
    if _multiproc_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _check_settings() -> None:
    """Refuse to start on a bad setting with its one line, before any worker forks.

    Without this each worker would fail alone and gunicorn would keep replacing it.
    """
    from settings import load

    here = Path(__file__).resolve().parent.parent
    load(dict(os.environ), Path(os.environ.get("INSTANCE_PATH") or here / "instance"))
