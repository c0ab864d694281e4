"""`python -m ops.serve [gunicorn flags]`: the production web process (the Procfile's `web`).

gunicorn reads WEB_CONCURRENCY while it is imported, before any config of ours runs, so
`WEB_CONCURRENCY=two gunicorn …` dies in a 13-line traceback. Here ops/gunicorn_config.py
checks the environment first (one line naming the variable, exit 1), and only then does this
process become gunicorn with that config serving app:create_app(). It keeps its process id
(exec), as systemd expects.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "app:create_app()"


def main(argv: list[str]) -> None:
    import ops.gunicorn_config  # noqa: F401  importing it checks PORT, WEB_CONCURRENCY, …: one line, exit 1

    beside = Path(sys.executable).with_name("gunicorn")  # the one installed with this Python's packages
    command = [str(beside)] if beside.exists() else [sys.executable, "-m", "gunicorn"]
    os.execv(command[0], [*command, "-c", "python:ops.gunicorn_config", *argv, APP])


if __name__ == "__main__":
    main(sys.argv[1:])
