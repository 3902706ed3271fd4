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
import threading
from collections.abc import Callable
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
    if writer is None:
        await asyncio.to_thread(store, app_of(request), kind, body, received_at)
        return
    await writer.store(kind, body, received_at)


class InboxWriter:
    """Group commit for the webhooks, on the event loop: a request joins the next batch and
    waits; one flush at a time commits a batch in a worker thread, so the requests that
    arrive while one transaction commits are stored together in the next. Each request is
    answered only once its own transaction has committed.

    One INSERT and one COMMIT per request would cost more than checking a SendGrid
    signature; here a busy moment costs one thread hop and one commit per batch. A failed
    transaction fails every request in it (they are answered 503, and the provider sends
    them again)."""

    def __init__(self, app: App, after_commit: Callable[[], None], max_batch: int = 500) -> None:
        self._app = app
        self._after_commit = after_commit
        self._max_batch = max_batch
        self._waiting: list[tuple[Kind, str, int, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def store(self, kind: Kind, body: str, received_at: int) -> None:
        """Store one request; returns once it is committed (raises if it could not be)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((kind, body, received_at, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def drain(self) -> None:
        """Wait for the flush under way (shutdown)."""
        if self._flushing is not None:
            await self._flushing

    def _commit(self, rows: list[tuple[Kind, str, int]]) -> None:
        with write_transaction(self._app.engine) as connection:
            store_requests(connection, rows)

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                await asyncio.to_thread(self._commit, [(k, b, at) for k, b, at, _ in batch])
            except Exception as exc:  # the database went away: every request here is failed
                logger.exception("storing %d requests in the inbox failed", len(batch))
                for *_, done in batch:
                    if not done.done():  # the client may have gone
                        done.set_exception(exc)
                continue
            for *_, done in batch:
                if not done.done():
                    done.set_result(None)
            self._after_commit()


def wake_worker(request: Request) -> None:
    worker: InboxWorker | None = getattr(request.app.state, "inbox_worker", None)
    if worker is not None:
        worker.wake()


class InboxWorker:
    """A thread that calls ``work`` when woken, and at least every ``poll_seconds``."""

    def __init__(
        self, work: Callable[[], Any], poll_seconds: float = 1.0, settle_seconds: float = 1.0
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
