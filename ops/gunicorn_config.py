"""gunicorn settings for production: `python -m ops.serve` runs gunicorn with them (see below
why not plain `gunicorn -c python:ops.gunicorn_config 'app:create_app()'`, which also works).

Command-line flags override these. Read from the environment:

- PORT (default 8000): the instance listens on 127.0.0.1:PORT, loopback only, for a proxy on
  the same host. GUNICORN_BIND replaces the whole address when the proxy is elsewhere or
  speaks to a socket: `0.0.0.0:8000`, `[::]:8000`, `unix:/run/mfa/8001.sock`.
- WEB_CONCURRENCY (default 2) workers, GUNICORN_THREADS (default 4) threads each.
- GUNICORN_CONTROL_SOCKET: gunicorn's control socket (for `gunicornc`). gunicorn's own
  default is one path per user, which a second instance on the host silently takes over,
  so the default here is one per instance: beside a unix bind (`8001.sock` -> `8001.ctl`),
  else `gunicorn-<port>.ctl` in systemd's RuntimeDirectory ($RUNTIME_DIRECTORY), else in
  $XDG_RUNTIME_DIR, else in ~/.gunicorn (gunicorn's own choices, in its order). `off`
  creates none.

A malformed value stops start-up with one line naming the variable. gunicorn itself reads
WEB_CONCURRENCY while it is imported, before this file, and crashes with a traceback on a
non-number: `python -m ops.serve` checks the environment first, then runs gunicorn with this
config.

With LOG_FORMAT json (production's default) or text, gunicorn's own lines (start-up, worker
boots, time-outs) are written by the app's formatters, so the log is one stream. gunicorn's
access log stays off: the app writes one access line per request (ops/logs.py).

PROMETHEUS_MULTIPROC_DIR: emptied at start (values left by an earlier run would be added
to this one's); a worker's files are marked dead when it exits.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DEFAULT_PORT, DEFAULT_WORKERS, DEFAULT_THREADS = 8000, 2, 4
MOST_WORKERS, MOST_THREADS = 64, 32
TCP_BIND = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(?P<port>\d{1,5})")


class BadSetting(ValueError):
    """One line naming the variable; stops start-up."""


def whole_number(environ: dict, name: str, default: int, highest: int | None = None) -> int:
    value = (environ.get(name) or "").strip()
    if not value:
        return default
    limit = f" from 1 to {highest}" if highest else " of at least 1"
    if not (value.isascii() and value.isdigit()) or int(value) < 1 or (highest is not None and int(value) > highest):
        raise BadSetting(f"{name} must be a whole number{limit}, not {value!r}.")
    return int(value)


def choose_bind(environ: dict) -> str:
    port = whole_number(environ, "PORT", DEFAULT_PORT, highest=65535)
    bind = (environ.get("GUNICORN_BIND") or "").strip()
    if not bind:
        return f"127.0.0.1:{port}"
    if bind.startswith("unix:"):
        if not bind[len("unix:"):].startswith("/"):
            raise BadSetting("GUNICORN_BIND must name an absolute socket path, e.g. unix:/run/mfa/8001.sock, "
                             f"not {bind!r}.")
        return bind
    tcp = TCP_BIND.fullmatch(bind)
    if tcp is None or not 1 <= int(tcp["port"]) <= 65535:
        raise BadSetting(f"GUNICORN_BIND must be HOST:PORT or unix:/path, e.g. 0.0.0.0:8000, not {bind!r}.")
    return bind


def _runtime_dir(environ: dict) -> Path:
    for value in ((environ.get("RUNTIME_DIRECTORY") or "").split(":")[0], environ.get("XDG_RUNTIME_DIR")):
        if value and os.path.isdir(value):
            return Path(value)
    return Path.home() / ".gunicorn"


def choose_control_socket(environ: dict, bind: str) -> str | None:
    """This instance's control socket path; None for none at all."""
    chosen = (environ.get("GUNICORN_CONTROL_SOCKET") or "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        if not chosen.startswith("/"):
            raise BadSetting(f"GUNICORN_CONTROL_SOCKET must be an absolute path or 'off', not {chosen!r}.")
        return chosen
    if bind.startswith("unix:"):
        path = Path(bind[len("unix:"):])
        beside = path.with_suffix(".ctl")
        return str(beside if beside != path else path.with_name(path.name + ".ctl"))
    return str(_runtime_dir(environ) / f"gunicorn-{bind.rsplit(':', 1)[1]}.ctl")


def log_config(environ: dict) -> dict:
    """dictConfig for gunicorn's loggers in the app's LOG_FORMAT; {} leaves gunicorn's own."""
    log_format = (environ.get("LOG_FORMAT") or "").strip() or (
        "json" if (environ.get("MFA_ENV") or "").strip() == "production" else None)
    formatter = {"json": "ops.logs.JsonFormatter", "text": "ops.logs.TextFormatter"}.get(log_format or "")
    if formatter is None:
        return {}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": []},  # each worker's app adds its own (ops.logs.install_handler)
        "formatters": {"app": {"()": formatter}},
        "handlers": {"stderr": {"()": "ops.logs.StderrHandler", "formatter": "app"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def _from_environment(environ: dict) -> tuple[str, int, int, str | None]:
    try:
        bind = choose_bind(environ)
        # Bounded: a slip of the keyboard must not fork thousands of workers (one per core is right).
        return (bind, whole_number(environ, "WEB_CONCURRENCY", DEFAULT_WORKERS, highest=MOST_WORKERS),
                whole_number(environ, "GUNICORN_THREADS", DEFAULT_THREADS, highest=MOST_THREADS),
                choose_control_socket(environ, bind))
    except BadSetting as bad:
        print(bad, file=sys.stderr)
        raise SystemExit(1) from None


bind, workers, threads, _control_socket = _from_environment(dict(os.environ))
if _control_socket is None:
    control_socket_disable = True
else:
    control_socket = _control_socket
logconfig_dict = log_config(dict(os.environ))
accesslog = None  # the app writes the access line, with the request id and client address
timeout = 30
# Twilio and the proxy reuse connections; a little longer than gunicorn's 2 s default.
keepalive = 5


def _multiproc_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def on_starting(server) -> None:
    _check_settings()
    _check_data_key(server)
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


def _check_data_key(server) -> None:
    """Refuse to start, with one line naming DATA_KEY, when stored secrets do not decrypt with it
    (every code check and call would fail). A database that cannot be read yet does not stop it."""
    from edge import check_data_key_at_start  # not ops: its metrics would be made in the arbiter
    from settings import load

    here = Path(__file__).resolve().parent.parent
    settings = load(dict(os.environ), Path(os.environ.get("INSTANCE_PATH") or here / "instance"))
    check_data_key_at_start(settings, warn=server.log.warning)
