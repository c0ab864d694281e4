"""Serve a stand-in app on its own port from a daemon thread (tests, `python -m standin`)."""

from __future__ import annotations

import threading

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

SHUTDOWN_POLL_SECONDS = 0.05  # how soon stop() takes effect; the default 0.5 s slows tests
POLLING_SUFFIXES = ("/calls.json", "/messages.json", "/panel")


class QuietPollingHandler(WSGIRequestHandler):
    """The pages poll every second; logging each poll would drown the REST traffic."""

    def log_request(self, code="-", size="-") -> None:
        path = self.path.split("?", 1)[0]
        if self.command == "GET" and path.endswith(POLLING_SUFFIXES) and code in (200, "200"):
            return
        super().log_request(code, size)


class StandinServer:
    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        # Threaded: a webhook handler in the app may call the REST API while we wait on it.
        self._server = make_server(host, port, app, threaded=True,
                                   request_handler=QuietPollingHandler)
        self.host = host
        self.port = self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def network(self):
        return self.app.extensions["standin"]

    def start(self) -> StandinServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
                                            name=f"standin-{self.port}", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted (python -m standin)."""
        self._server.serve_forever()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self.network.timers.cancel_all()

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
