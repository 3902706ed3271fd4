"""The service's side of the inbox: what every webhook and ingestion endpoint shares.

``accept`` stores one request (one INSERT, committed) and wakes the worker; the answer goes
out only after. ``InboxWorker`` is the thread the lifespan starts: it works the inbox when
woken after a store and every ``poll_seconds`` anyway (rows a crash left behind, retries),
and stops cleanly at shutdown after a last pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from bootstrap.app import App
from store.engine import write_transaction
from store.inbox import Kind, store_request

logger = logging.getLogger("nudgeflow.web")


def app_of(request: Request) -> App:
    """The ``App`` the service was started with."""
    app: App = request.app.state.nudgeflow
    return app


def problem(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error answer: ``{"error": reason}``."""
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


def store(app: App, kind: Kind, body: str, received_at: int) -> int:
    """Store one accepted request; its inbox id. Runs in a worker thread (blocking I/O)."""
    with write_transaction(app.engine) as connection:
        return store_request(connection, kind, body, received_at)


def wake_worker(request: Request) -> None:
    worker: InboxWorker | None = getattr(request.app.state, "inbox_worker", None)
    if worker is not None:
        worker.wake()


class InboxWorker:
    """A thread that calls ``work`` when woken, and at least every ``poll_seconds``."""

    def __init__(self, work: Callable[[], Any], poll_seconds: float = 1.0) -> None:
        self._work = work
        self._poll = poll_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nudgeflow-inbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the work in hand, and wait for it."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        # At least one pass, and one more after ``stop``: the backlog found at start-up and
        # the requests accepted just before shutdown are worked, not left for the night.
        while True:
            self._wake.clear()
            try:
                self._work()
            except Exception:  # a database that went away: logged, tried again at the next poll
                logger.exception("working the inbox failed; trying again shortly")
            if self._stopping.is_set():
                return
            self._wake.wait(self._poll)
