"""The child process of the crash matrix: one business night of ``crash_world`` run as a
script.

::

    python -m tests.integration.night.crash_child AS_OF [KILL_POINT N]

The child reads its settings from ``NUDGEFLOW_*`` variables like ``nudgeflow run`` does,
takes the ``nightly`` lease and runs the plain night steps of ``night/`` (funding,
refresh, fatigue recovery, plan, dispatch, fatigue tagging). Given a kill point it SIGKILLs
itself at that point's N-th hit, wherever the thread that hits it is. It prints a JSON
summary when it finishes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from tests.integration.night.crash_world import REWARD_KINDS, close_app, fund

Checkpoint = Callable[[str], None]


def killing_checkpoint(point: str | None, nth: int) -> Checkpoint:
    """A checkpoint that SIGKILLs this process at ``point``'s ``nth`` hit (any thread)."""
    hits = 0
    lock = threading.Lock()

    def checkpoint(name: str) -> None:
        nonlocal hits
        if name != point:
            return
        with lock:
            hits += 1
            if hits >= nth:
                os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint


class CheckpointAfterCreate:
    """Wraps a provider: ``issue`` returns from Stripe, then hits ``after_provider_create``
    before the dispatcher can store what Stripe answered."""

    def __init__(self, inner: Any, checkpoint: Checkpoint) -> None:
        self.inner = inner
        self.checkpoint = checkpoint

    def issue(self, *args: Any, **kwargs: Any) -> Any:
        issued = self.inner.issue(*args, **kwargs)
        self.checkpoint("after_provider_create")
        return issued

    def find(self, *args: Any) -> Any:
        return self.inner.find(*args)

    def deactivate(self, issued: Any) -> None:
        self.inner.deactivate(issued)

    def close(self) -> None:
        self.inner.close()


def run_night(app: Any, as_of: date, checkpoint: Checkpoint) -> dict[str, Any]:
    """The night's steps under the lease, as ``nudgeflow run`` orders them."""
    from night.fatigue import recover_rested, tag_unanswered
    from night.lease import night_lease
    from night.plan import plan
    from night.refresh import refresh
    from tests.integration import nights

    with night_lease(app.engine, as_of, app.clock) as lease:
        fund(app, as_of)
        refresh(app.night(as_of))
        recovered = recover_rested(app.night(as_of))
        planned = plan(app.night(as_of))
        dispatched = nights.dispatch(app, as_of, checkpoint)
        tagged = tag_unanswered(app.night(as_of), checkpoint)
        took_over = lease.took_over_from if lease is not None else None
    return {
        "took_over_from": took_over,
        "new_actions": planned.get("new_actions"),
        "recovered": dispatched.recovered,
        "batches": dispatched.batches,
        "outcomes": {o: dispatched.result.total(o) for o in ("sent", "failed", "unknown")},
        "deferred": dispatched.result.total("deferred"),
        "problems": dispatched.result.problems[:5],
        "fatigue": {"tagged": tagged, "recovered": recovered},
    }


def main(argv: list[str]) -> int:
    from settings import load_settings

    as_of = date.fromisoformat(argv[0])
    point = argv[1] if len(argv) > 1 else None
    nth = int(argv[2]) if len(argv) > 2 else 1
    from bootstrap.app import build_app

    app = build_app(load_settings())
    checkpoint = killing_checkpoint(point, nth)
    if point == "after_provider_create":
        for kind in REWARD_KINDS:
            app.issuer.providers[kind] = CheckpointAfterCreate(
                app.issuer.providers[kind], checkpoint
            )
    started = datetime.now(UTC)
    try:
        summary = run_night(app, as_of, checkpoint)
    finally:
        close_app(app)
    summary["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 2)
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
