"""Dispatch a night: the one loop that works the night's pending actions in batches.

A run first turns actions a dead run left in ``sending`` into ``unknown`` (they are never
re-sent blindly), then hands every pending action to the dispatcher in batches of
``batch_size``, then gives the actions deferred by transient provider errors one more pass.
The Prefect flow passes ``run_batch`` to make each batch a task; the crash tests pass a
``checkpoint`` to kill the process between batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from night.batch import OUTCOMES, BatchResult, Checkpoint, no_checkpoint
from night.dispatcher import Dispatcher
from night.lease import check_lease

PASSES = 2  # the night's pass, and one more for what transient errors deferred

RunBatch = Callable[[Sequence[str]], BatchResult]


def batches(ids: Sequence[str], size: int) -> list[list[str]]:
    """``ids`` in consecutive slices of at most ``size``."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


@dataclass
class DispatchRun:
    """What a night's dispatch did."""

    recovered: int  # actions a dead run left in ``sending``, now ``unknown``
    result: BatchResult
    batches: int

    def totals(self) -> dict[str, Any]:
        """The run summary's ``dispatch`` figures: recovered, batches and each outcome."""
        counts = {o: self.result.total(o) for o in OUTCOMES if self.result.total(o)}
        return {"recovered": self.recovered, "batches": self.batches, **counts}


def dispatch_night(
    dispatcher: Dispatcher,
    batch_size: int,
    *,
    run_batch: RunBatch | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> DispatchRun:
    """Dispatch every pending action of the dispatcher's night (see the module docstring);
    ``run_batch`` defaults to ``dispatcher.dispatch``."""
    work = run_batch or dispatcher.dispatch
    recovered = dispatcher.recover()
    result = BatchResult()
    count = 0
    for attempt in range(PASSES):
        pending = dispatcher.pending()
        if attempt and not pending:
            break
        for batch in batches(pending, batch_size):
            check_lease()
            result.add(work(batch))
            count += 1
            checkpoint("between_batches")
    return DispatchRun(recovered, result, count)
