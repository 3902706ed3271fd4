"""``create_app``: the ASGI application of ``nudgeflow web``.

Starlette rather than FastAPI: every endpoint here needs the raw body (signatures are over
the exact bytes, and a body over the limit must be refused before it is read in full), the
pages are plain HTML forms, and the ingestion API follows Segment's published shape rather
than a schema of ours; FastAPI's validation and generated docs would sit unused on top of
the Starlette it is built on. Both come with Prefect; Starlette is the smaller dependency.

The application builds its ``App`` (settings, engine) at start-up, in the lifespan: a bad
setting stops the server before it accepts a request, naming the setting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bootstrap.app import App, build_app
from inbound.inbox import work_inbox
from web import ingest, pages, webhooks
from web.intake import InboxWorker, InboxWorkerProcess, InboxWriter

logger = logging.getLogger("nudgeflow.web")


def the_app(request: Request) -> App:
    """The ``App`` the service was started with."""
    app: App = request.app.state.nudgeflow
    return app


async def healthz(request: Request) -> JSONResponse:
    """200 when the database answers, 503 (with the reason) when it does not."""

    def probe() -> None:
        with the_app(request).engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await run_in_threadpool(probe)
    except Exception as exc:  # any failure to reach the database is "unavailable"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(
    build: Callable[[], App] | None = None,
    *,
    inbox_worker: bool = True,
    worker_process: bool = False,
) -> Starlette:
    """The service; ``build`` makes its ``App`` at start-up (by default from the environment).
    The inbox worker runs from start-up to shutdown unless ``inbox_worker`` is False (tests
    that leave requests in the inbox on purpose): with ``worker_process``, in a process of
    its own built from the same settings (``web.intake.InboxWorkerProcess``: ``nudgeflow
    web`` and ``web.asgi:app``), else as a thread of this one (``web.intake.InboxWorker``:
    tests, whose ``App`` carries a clock of their own)."""

    @asynccontextmanager
    async def lifespan(starlette: Starlette) -> AsyncIterator[None]:
        app = (build or build_app)()
        _ = app.engine  # connect and migrate now: a bad database stops the start-up
        starlette.state.nudgeflow = app
        worker: InboxWorker | InboxWorkerProcess | None = None
        watch = None
        if inbox_worker and worker_process:
            worker = InboxWorkerProcess(app.settings)
            worker.start()
            watch = asyncio.create_task(_keep_running(worker))
        elif inbox_worker:
            worker = InboxWorker(lambda: work_inbox(app.engine, app.zone, app.clock))
            worker.start()
        starlette.state.inbox_worker = worker
        writer = InboxWriter(app.engine, after_commit=worker.wake if worker else lambda: None)
        starlette.state.inbox_writer = writer
        try:
            yield
        finally:
            await writer.drain()
            writer.close()
            if watch is not None:
                watch.cancel()
            if worker is not None:
                await run_in_threadpool(worker.stop)

    # The router tries routes in order: the webhooks, which take thousands of requests a
    # minute, first.
    routes = [
        *webhooks.routes,
        *ingest.routes,
        Route("/healthz", healthz, methods=["GET"]),
        *pages.routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _keep_running(worker: InboxWorkerProcess, every_seconds: float = 5.0) -> None:
    """Start a new worker process whenever the last one has died."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await run_in_threadpool(worker.ensure_running)
        except Exception:  # could not start one (out of memory, processes): try again later
            logger.exception("starting an inbox worker process failed")
