"""The one background thread that talks to the customer app, and the real-time timers.

Every webhook the stand-in sends goes out from this single thread, in the order the jobs were
queued, so callbacks never overtake each other and TwiML walking never runs concurrently.
A job queued by a REST handler may carry a short settle delay: Twilio never calls back before
its create response has reached the customer, and neither should we. Anyone waiting on the
worker (wait_idle, a test pressing a key) waives the delay, so tests never sleep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Callable

log = logging.getLogger(__name__)

JOB_WAIT_SECONDS = 60.0  # longest a caller waits for a job: a few slow webhooks at most


class Worker:
    def __init__(self, name: str = "standin-worker"):
        self._jobs: deque[tuple[Callable[[], object], Future, float]] = deque()
        self._cond = threading.Condition()
        self._unfinished = 0
        self._hurry = 0  # callers waiting right now: settle delays are skipped meanwhile
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def on_worker_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, job: Callable[[], object], *, settle: float = 0.0) -> Future:
        future: Future = Future()
        with self._cond:
            self._unfinished += 1
            self._jobs.append((job, future, time.monotonic() + settle))
            self._cond.notify_all()
        return future

    def run(self, job: Callable[[], object]) -> object:
        """Run job on the worker after everything already queued, and wait for its result."""
        if self.on_worker_thread():
            return job()
        with self._hurrying():
            return self.submit(job).result(timeout=JOB_WAIT_SECONDS)

    def wait_idle(self, timeout: float) -> None:
        if self.on_worker_thread():
            raise RuntimeError("wait_idle() called from the stand-in's own worker thread")
        with self._hurrying(), self._cond:
            if not self._cond.wait_for(lambda: self._unfinished == 0, timeout):
                raise TimeoutError(f"stand-in still busy after {timeout}s")

    @contextmanager
    def _hurrying(self):
        with self._cond:
            self._hurry += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._hurry -= 1

    def _next_job(self):
        with self._cond:
            while True:
                if self._jobs:
                    delay = self._jobs[0][2] - time.monotonic()
                    if delay <= 0 or self._hurry:
                        return self._jobs.popleft()
                    self._cond.wait(timeout=delay)
                else:
                    self._cond.wait()

    def _loop(self) -> None:
        while True:
            job, future, _ = self._next_job()
            try:
                future.set_result(job())
            except BaseException as exc:  # a bug in one job must not kill the network
                log.exception("stand-in job failed")
                future.set_exception(exc)
            finally:
                with self._cond:
                    self._unfinished -= 1
                    self._cond.notify_all()


class Timers:
    """Named one-shot timers for real-time mode; inert when the network runs in test mode."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._timers: dict[tuple[str, str], threading.Timer] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, name: str, seconds: float, action: Callable[[], object]) -> None:
        if not self.enabled:
            return
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        with self._lock:
            previous = self._timers.pop((owner, name), None)
            self._timers[(owner, name)] = timer
        if previous:
            previous.cancel()
        timer.start()

    def cancel(self, owner: str, name: str | None = None) -> None:
        with self._lock:
            keys = [key for key in self._timers if key[0] == owner and name in (None, key[1])]
            doomed = [self._timers.pop(key) for key in keys]
        for timer in doomed:
            timer.cancel()

    def cancel_all(self) -> None:
        with self._lock:
            doomed = list(self._timers.values())
            self._timers.clear()
        for timer in doomed:
            timer.cancel()
