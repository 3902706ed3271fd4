"""The service's side of the inbox: what every webhook and ingestion endpoint shares.

The webhooks hand each request to ``InboxWriter``, which checks it, stores the accepted
requests that arrive together in one transaction (group commit), answers them once it has
committed and then wakes the worker. ``InboxWorker`` is the thread the lifespan
starts beside it: it works the inbox when woken after a store and every ``poll_seconds``
anyway (rows a crash left behind, retries), and stops cleanly at shutdown after a last pass.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from bootstrap.app import App, build_app
from inbound.inbox import work_inbox
from settings import AppSettings
from store.engine import write_transaction
from store.inbox import InboxAppender, Kind, store_request, store_requests

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


@dataclass(frozen=True)
class Keep:
    """A request that passed its checks: store ``text``, then answer 200 with ``answer``."""

    text: str
    answer: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """A request answered without storing anything: refused (4xx) or ignored (200)."""

    status: int
    body: dict[str, Any]


Check = Callable[[], Keep | Answer]


def answer_for(outcome: Keep | Answer) -> JSONResponse:
    if isinstance(outcome, Keep):
        return JSONResponse(outcome.answer)
    return JSONResponse(outcome.body, status_code=outcome.status)


INLINE_CHECK_BYTES = 64 * 1024  # bodies up to this size are checked without a thread hop


class InboxWriter:
    """Group commit for the webhooks, on the event loop.

    ``submit`` runs a request's ``check`` (the signature and the body; a large body in a
    worker thread, so parsing it holds up no other request) and, if it passes, adds the
    request to the next batch and waits. The batch is stored once the requests that arrived
    together have all been checked (a callback after them on the loop); the requests that
    arrive while batches are being stored wait for the next. Each request is answered only
    once its own transaction has committed, then the worker is woken.

    On SQLite the batch is committed right there on the loop when no other writer holds the
    lock (``store.inbox.InboxAppender``: a WAL commit costs less than a thread hop), else in
    a worker thread that waits its turn, one batch at a time (SQLite has one writer). On
    PostgreSQL batches are committed in worker threads, up to ``max_in_flight`` at once: a
    commit waits for the server's WAL flush, and the server flushes concurrent commits
    together. A failed transaction fails every request in it (they are answered 503, and
    the provider sends them again)."""

    def __init__(
        self,
        engine: Engine,
        after_commit: Callable[[], None],
        max_batch: int = 500,
        max_in_flight: int | None = None,
    ) -> None:
        self._engine = engine
        self._after_commit = after_commit
        self._max_batch = max_batch
        sqlite = engine.dialect.name == "sqlite"
        self._appender = InboxAppender(engine) if sqlite else None
        self._max_in_flight = max_in_flight or (1 if sqlite else 4)
        self._waiting: list[tuple[Kind, str, int, asyncio.Future[None]]] = []
        self._scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()

    async def submit(self, kind: Kind, received_at: int, check: Check, size: int) -> Keep | Answer:
        """Check one request of ``size`` bytes and store it if it passes; returns once it is
        committed (raises if it could not be)."""
        outcome = check() if size <= INLINE_CHECK_BYTES else await run_in_threadpool(check)
        if isinstance(outcome, Keep):
            await self.store(kind, outcome.text, received_at)
        return outcome

    async def store(self, kind: Kind, body: str, received_at: int) -> None:
        """Store one checked request; returns once it is committed (raises if it could not
        be)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((kind, body, received_at, done))
        self._schedule()
        await done

    async def drain(self) -> None:
        """Wait until every request handed over is stored or failed (shutdown)."""
        while self._waiting or self._scheduled or self._in_flight:
            if self._in_flight:
                await asyncio.wait(set(self._in_flight))
            else:
                await asyncio.sleep(0)

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()

    def _schedule(self) -> None:
        """Flush once the requests that arrived together are all in, if a commit may start."""
        if self._waiting and not self._scheduled and len(self._in_flight) < self._max_in_flight:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Store the waiting requests: here when that needs no wait, else in threads."""
        self._scheduled = False
        while self._waiting and len(self._in_flight) < self._max_in_flight:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: len(batch)]
            rows = [(k, b, at) for k, b, at, _ in batch]
            if self._appender is not None and not self._in_flight:
                try:
                    stored = self._appender.try_store(rows)
                except Exception as exc:  # the database failed: every request here is failed
                    self._failed(batch, exc)
                    continue
                if stored:
                    self._committed(batch)
                    continue
            task = asyncio.get_running_loop().create_task(self._commit_in_thread(batch, rows))
            self._in_flight.add(task)
            task.add_done_callback(self._commit_ended)

    async def _commit_in_thread(
        self,
        batch: list[tuple[Kind, str, int, asyncio.Future[None]]],
        rows: list[tuple[Kind, str, int]],
    ) -> None:
        try:
            await asyncio.to_thread(self._commit, rows)
        except Exception as exc:  # the database went away
            self._failed(batch, exc)
        else:
            self._committed(batch)

    def _commit_ended(self, task: asyncio.Task[None]) -> None:
        """A commit in a thread ended: the requests that waited for a free one may go."""
        self._in_flight.discard(task)
        self._schedule()

    def _commit(self, rows: list[tuple[Kind, str, int]]) -> None:
        with write_transaction(self._engine) as connection:
            store_requests(connection, rows)

    def _committed(self, batch: list[tuple[Kind, str, int, asyncio.Future[None]]]) -> None:
        for *_, done in batch:
            if not done.done():  # the client may have gone; its request is stored
                done.set_result(None)
        self._after_commit()

    def _failed(
        self, batch: list[tuple[Kind, str, int, asyncio.Future[None]]], exc: Exception
    ) -> None:
        logger.error("storing %d requests in the inbox failed: %s", len(batch), exc)
        for *_, done in batch:
            if not done.done():
                done.set_exception(exc)


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


class InboxWorkerProcess:
    """The inbox worker in a process of its own, for ``nudgeflow web`` and ``web.asgi:app``.

    The service's event loop is its one busy thread; a worker thread beside it takes the
    GIL from it after every driver step, so the worker's work comes out of the requests'.
    In a process of its own it runs on another core. The process is built from the
    service's settings (spawned, not forked: a fresh interpreter, no copied threads or
    connections) and works the inbox every ``poll_seconds``. It is told to stop by the
    service closing its end of a pipe (which also happens when the service dies), and then
    works the inbox once more before it exits: the requests accepted just before shutdown.
    It ignores Ctrl-C and SIGTERM, which a terminal and systemd send to the whole process
    group: the service stops it after its own last commits (a signal in its first second,
    before it has set that up, ends it at once: what it leaves pending is worked at the next
    start or by the night). If it dies, ``ensure_running`` starts another."""

    def __init__(self, settings: AppSettings, poll_seconds: float = 1.0) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._settings = settings
        self._poll = poll_seconds
        self._stopping = False
        self._process: Any = None
        self._stop_line: Any = None  # our end of the pipe the process watches
        self._lock = threading.Lock()  # ensure_running (a thread) against stop (shutdown)

    def start(self) -> None:
        watched, self._stop_line = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=run_inbox_worker,
            args=(self._settings, self._poll, watched),
            name="nudgeflow-inbox",
            daemon=True,
        )
        self._process.start()
        watched.close()  # the process's end: its copy is the only one left open

    def ensure_running(self) -> bool:
        """Start a new worker process if the last one died; True if it did."""
        with self._lock:
            if self._process is None or self._stopping or self._process.is_alive():
                return False
            logger.warning(
                "the inbox worker process exited (code %s); starting another",
                self._process.exitcode,
            )
            self._stop_line.close()
            self.start()
            return True

    def wake(self) -> None:
        """Nothing to do: the process looks every ``poll_seconds``."""

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the process to stop after a last pass, and wait for it (then kill it)."""
        with self._lock:
            self._stopping = True
            if self._process is None:
                return
            self._stop_line.close()
        self._process.join(timeout)
        if self._process.is_alive():
            logger.error("the inbox worker process did not stop in %s s; killing it", timeout)
            self._process.kill()
            self._process.join()


def run_inbox_worker(settings: AppSettings, poll_seconds: float, stop_line: Any) -> None:
    """The worker process's life (``InboxWorkerProcess``): work, then wait ``poll_seconds``
    for the service to close ``stop_line``, and again; once it has, a last pass."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    app = build_app(settings)

    def work() -> None:
        try:
            work_inbox(app.engine, app.zone, app.clock)
        except Exception:  # a database that went away: logged, tried again at the next poll
            logger.exception("working the inbox failed; trying again shortly")

    while True:
        work()
        if stop_line.poll(poll_seconds):  # closed (or written to): stop
            work()
            return
