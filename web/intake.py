"""The service's side of the inbox: what every webhook and ingestion endpoint shares.

``store_accepted`` stores one request and the answer goes out only after its commit: the
webhooks go through ``InboxWriter``, which commits the requests that arrive together in one
transaction (group commit) and then wakes the worker. ``InboxWorker`` is the thread the
lifespan starts: it works the inbox when woken after a store and every ``poll_seconds``
anyway (rows a crash left behind, retries), and stops cleanly at shutdown after a last pass.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from bootstrap.app import App
from store.engine import write_transaction
from store.inbox import Kind, store_request, store_requests

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


async def store_accepted(request: Request, kind: Kind, body: str, received_at: int) -> None:
    """Store one accepted request before it is answered: through the service's
    ``InboxWriter`` (group commit) when it runs, else in a transaction of its own."""
    writer: InboxWriter | None = getattr(request.app.state, "inbox_writer", None)
    if writer is None or not writer.running:
        await asyncio.to_thread(store, app_of(request), kind, body, received_at)
        return
    await asyncio.wrap_future(writer.submit(kind, body, received_at))


class InboxWriter:
    """Group commit for the webhooks: a thread stores the requests that arrived while the
    previous transaction was committing, together, in one transaction; each request is
    answered only once its own transaction has committed.

    One INSERT and one COMMIT per request cost more than checking a SendGrid signature: under
    load, the requests waiting for a commit share the next one. A failed transaction fails
    every request in it (they are answered 503, and the provider sends them again)."""

    def __init__(self, app: App, after_commit: Callable[[], None], max_batch: int = 500) -> None:
        self._app = app
        self._after_commit = after_commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Kind, str, int, Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="nudgeflow-intake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def submit(self, kind: Kind, body: str, received_at: int) -> Future[None]:
        """Queue a request; the future is done when it is committed (or failed)."""
        done: Future[None] = Future()
        self._queue.put((kind, body, received_at, done))
        return done

    def stop(self, timeout: float = 30.0) -> None:
        """Store what is queued, then stop."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                with write_transaction(self._app.engine) as connection:
                    store_requests(connection, [(k, body, at) for k, body, at, _ in batch])
            except Exception as exc:  # the database went away: every request here is failed
                logger.exception("storing %d requests in the inbox failed", len(batch))
                for *_, done in batch:
                    done.set_exception(exc)
                continue
            for *_, done in batch:
                done.set_result(None)
            self._after_commit()


def wake_worker(request: Request) -> None:
    worker: InboxWorker | None = getattr(request.app.state, "inbox_worker", None)
    if worker is not None:
        worker.wake()


class InboxWorker:
    """A thread that calls ``work`` when woken, and at least every ``poll_seconds``."""

    def __init__(
        self, work: Callable[[], Any], poll_seconds: float = 1.0, settle_seconds: float = 0.25
    ) -> None:
        self._work = work
        self._poll = poll_seconds
        self._settle = settle_seconds
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
            # Requests come in bursts: let a burst gather, then work it in a few large
            # batches instead of a pass (a transaction, a few queries) per request.
            self._stopping.wait(self._settle)
