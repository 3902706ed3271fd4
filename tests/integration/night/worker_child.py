"""The child processes of the worker crash tests: a night's run that shares its dispatch,
and a worker that joins it (``night.workers``), against the fakes of ``crash_world``.

::

    python -m tests.integration.night.worker_child run AS_OF [KILL_POINT N]
    python -m tests.integration.night.worker_child work AS_OF [KILL_POINT N]

``run`` takes the ``nightly`` lease, opens the night's run, funds, refreshes, plans and
dispatches through claimed batches (``dispatch_shared``), then closes the run; ``work``
waits for that run and works its batches (``join_run``). Claims last ``CLAIM_SECONDS``
without a heartbeat, so a killed worker's batch is taken over within seconds. Given a kill
point the child SIGKILLs itself at its N-th hit. Each prints a JSON summary when it ends.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

from tests.integration.night.crash_child import CheckpointAfterCreate, killing_checkpoint
from tests.integration.night.crash_world import REWARD_KINDS, close_app, fund

CLAIM_SECONDS = 3.0


def terms() -> Any:
    from night.workers import ClaimTerms

    return ClaimTerms(ttl_seconds=CLAIM_SECONDS, heartbeat_seconds=0.5, poll_seconds=0.2)


def run_night(app: Any, as_of: date, checkpoint: Any) -> dict[str, Any]:
    from night.lease import night_lease
    from night.plan import plan
    from night.refresh import refresh
    from night.runs import close_run, open_run
    from night.workers import dispatch_shared

    with night_lease(app.engine, as_of, app.clock):
        opened = open_run(app.engine, as_of, "nightly", None, app.clock)
        fund(app, as_of)
        refresh(app.night(as_of))
        plan(app.night(as_of))
        night = app.night(as_of)
        dispatched = dispatch_shared(
            app.dispatcher(night, checkpoint),
            opened.run_id,
            night.batch_size,
            terms=terms(),
            checkpoint=checkpoint,
        )
        close_run(app.engine, opened.run_id, "completed", app.clock)
    return {
        "run_id": opened.run_id,
        "recovered": dispatched.recovered,
        "batches": dispatched.batches,
        "outcomes": {o: dispatched.result.total(o) for o in ("sent", "failed", "unknown")},
    }


def work(app: Any, as_of: date, checkpoint: Any) -> dict[str, Any]:
    from night.workers import find_run, join_run

    run_id = find_run(app.engine, as_of, wait_seconds=60, poll_seconds=0.1)
    assert run_id is not None, "no run to join"
    joined = join_run(
        app.dispatcher(app.night(as_of), checkpoint),
        run_id,
        terms=terms(),
        checkpoint=checkpoint,
    )
    return {"run_id": run_id, "batches": joined.batches}


def main(argv: list[str]) -> int:
    from bootstrap.app import build_app
    from settings import load_settings

    role, as_of = argv[0], date.fromisoformat(argv[1])
    point = argv[2] if len(argv) > 2 else None
    nth = int(argv[3]) if len(argv) > 3 else 1
    app = build_app(load_settings())
    checkpoint = killing_checkpoint(point, nth)
    if point == "after_provider_create":
        for kind in REWARD_KINDS:
            app.issuer.providers[kind] = CheckpointAfterCreate(
                app.issuer.providers[kind], checkpoint
            )
    try:
        summary = (run_night if role == "run" else work)(app, as_of, checkpoint)
    finally:
        close_app(app)
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
