"""The ``dispatch-worker`` flow: one worker process of a night's shared dispatch, started
on a work pool by the nightly flow (``run_deployment`` of the ``dispatch-worker``
deployment, one flow run per extra worker). It joins the run, claims and works batches
(each a ``dispatch-batch`` task) until the run's dispatch is over; see ``night.workers``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger

from bootstrap.app import process_app
from flows.nightly import dispatch_batch_task
from night.workers import join_run


@flow(name="dispatch-worker")
def dispatch_worker(as_of: date, run_id: int) -> dict[str, Any]:
    """Work batches of run ``run_id`` (the night ``as_of``) until its dispatch is over."""
    app = process_app()
    night = app.night(as_of)
    dispatcher = app.dispatcher(night)
    joined = join_run(
        dispatcher,
        run_id,
        terms=app.claim_terms(),
        run_batch=lambda batch: dispatch_batch_task(dispatcher, batch),
    )
    get_run_logger().info("worked %d batches of run %d (%s)", joined.batches, run_id, as_of)
    return {"run_id": run_id, "as_of": as_of.isoformat(), "batches": joined.batches}
