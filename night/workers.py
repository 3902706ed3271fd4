"""A night's dispatch across worker processes (PostgreSQL): the run that holds the night's
lease publishes each pass as batches; it and every worker that joined the run claim and
work them (``store.dispatch_claims``), each batch through the same ``Dispatcher``.

* **The run** (``dispatch_shared``, the nightly flow's process): turns what a dead run left
  in ``sending`` into ``unknown`` (it holds the lease), publishes the pass's pending actions
  in batches, works batches like any worker, then waits for the batches other workers
  hold; a batch whose worker died becomes claimable when its claim expires, and the run
  (or another worker) takes it over. After the second pass (what transient errors
  deferred) it closes the round, and the workers leave.
* **A worker** (``join_run``, ``nudgeflow worker`` or the ``dispatch-worker`` flow): waits
  for the run's round to open, claims and works batches until none is claimable, and
  leaves when the round closes or the run stops running.
* **Taking over** a batch: its actions still in ``sending`` become ``unknown`` (the dead
  worker may have sent them, email has no idempotency key); the rest continue from their
  committed state, so exactly once holds as it does for a run taken over after a crash.

The claims only share out the work; the state of each action decides what it may still do.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from night.batch import BatchResult, Checkpoint, DispatchStopped, no_checkpoint
from night.dispatch import PASSES, DispatchRun, batches
from night.dispatcher import Dispatcher
from night.lease import LEASE_NAME, check_lease
from nudgeflow.errors import StoreError
from store import dispatch_claims as claims
from store.dispatch_claims import Claim
from store.lease import default_holder

RunBatch = Callable[[Sequence[str]], BatchResult]
_PROBLEMS_KEPT = 50  # per batch, in the batch's recorded result


@dataclass(frozen=True)
class ClaimTerms:
    """How long a claim lasts without a heartbeat, how often it beats, how often an idle
    worker looks for work."""

    ttl_seconds: float = 60.0
    heartbeat_seconds: float = 10.0
    poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_seconds < self.ttl_seconds:
            raise ValueError("heartbeat_seconds must be positive and shorter than ttl_seconds")

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.ttl_seconds)


def result_json(
    result: BatchResult, stopped: str | None = None, recovered: int = 0
) -> dict[str, Any]:
    """A batch's result as stored with the batch."""
    return {
        "recovered": recovered,
        "outcomes": [[cid, outcome, n] for (cid, outcome), n in sorted(result.outcomes.items())],
        "rewards_issued": dict(result.rewards_issued),
        "problems": result.problems[:_PROBLEMS_KEPT],
        "stopped": stopped,
    }


def result_from_json(stored: dict[str, Any]) -> BatchResult:
    return BatchResult(
        outcomes=Counter({(str(c), str(o)): int(n) for c, o, n in stored.get("outcomes", [])}),
        rewards_issued=Counter(
            {str(k): int(v) for k, v in stored.get("rewards_issued", {}).items()}
        ),
        problems=[str(p) for p in stored.get("problems", [])],
    )


class _Held:
    """A claim kept alive by a heartbeat thread; ``lost`` once a beat found it gone."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.lost = threading.Event()


@contextmanager
def _heartbeat(
    engine: Engine, claim: Claim, terms: ClaimTerms, clock: Callable[[], datetime]
) -> Iterator[_Held]:
    held = _Held(claim)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(terms.heartbeat_seconds):
            try:
                with engine.begin() as connection:
                    if not claims.renew(connection, claim, clock(), terms.ttl):
                        held.lost.set()
                        return
            except SQLAlchemyError:
                continue  # busy for a moment: the next beat tries again

    thread = threading.Thread(target=beat, name="nudgeflow-claim", daemon=True)
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join()


def work_batches(
    dispatcher: Dispatcher,
    run_id: int,
    *,
    terms: ClaimTerms,
    holder: str | None = None,
    run_batch: RunBatch | None = None,
    checkpoint: Checkpoint = no_checkpoint,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Claim and work the run's batches until none is claimable (or ``keep_going`` says
    to stop); return how many were worked. A provider that refused our key cancels the
    batches nobody claimed yet and raises ``DispatchStopped``."""
    engine, clock = dispatcher.engine, dispatcher.clock
    holder = holder or default_holder()
    work = run_batch or dispatcher.dispatch
    worked = 0
    while keep_going():
        with engine.begin() as connection:
            claim = claims.claim(connection, run_id, holder, clock(), terms.ttl)
        if claim is None:
            return worked
        with _heartbeat(engine, claim, terms, clock):
            recovered = 0
            if claim.took_over_from is not None:
                recovered = dispatcher.recover(claim.action_ids)
            try:
                result = work(claim.action_ids)
            except DispatchStopped as exc:
                stopped = result_json(BatchResult(), str(exc), recovered)
                with engine.begin() as connection:
                    claims.finish(connection, claim, stopped, clock())
                    claims.cancel_ready(connection, run_id)
                raise
            with engine.begin() as connection:
                claims.finish(connection, claim, result_json(result, None, recovered), clock())
        worked += 1
        checkpoint("between_batches")
    return worked


def dispatch_shared(
    dispatcher: Dispatcher,
    run_id: int,
    batch_size: int,
    *,
    terms: ClaimTerms,
    run_batch: RunBatch | None = None,
    checkpoint: Checkpoint = no_checkpoint,
    sleep: Callable[[float], None] = time.sleep,
) -> DispatchRun:
    """The run's side of a shared dispatch (see the module docstring); the caller holds
    the night's lease and has opened run ``run_id``."""
    engine, clock = dispatcher.engine, dispatcher.clock
    recovered = dispatcher.recover()
    published = 0
    for attempt in range(PASSES):
        pending = dispatcher.pending()
        if attempt and not pending:
            break
        parts = batches(pending, batch_size)
        with engine.begin() as connection:
            if not attempt:
                claims.prune(connection, run_id)  # the batches of nights that are over
            claims.open_round(connection, run_id, dispatcher.config.as_of, attempt, clock())
            claims.publish(connection, run_id, attempt, parts)
        published += len(parts)
        while True:
            try:
                work_batches(
                    dispatcher,
                    run_id,
                    terms=terms,
                    run_batch=run_batch,
                    checkpoint=checkpoint,
                    keep_going=_lease_held,
                )
            except DispatchStopped:
                _close(engine, run_id, clock)
                raise
            with engine.connect() as connection:
                if not claims.open_batches(connection, run_id, attempt):
                    break
            sleep(terms.poll_seconds)  # other workers hold the rest: wait for them
        stopped = _stopped(engine, run_id)
        if stopped is not None:
            _close(engine, run_id, clock)
            raise DispatchStopped(stopped)
    _close(engine, run_id, clock)
    result = BatchResult()
    with engine.connect() as connection:
        for stored in claims.results(connection, run_id):
            result.add(result_from_json(stored))
            recovered += int(stored.get("recovered") or 0)
    return DispatchRun(recovered, result, published)


def _lease_held() -> bool:
    check_lease()  # raises once the night's lease was lost
    return True


def _stopped(engine: Engine, run_id: int) -> str | None:
    with engine.connect() as connection:
        for stored in claims.results(connection, run_id):
            if stored.get("stopped"):
                return str(stored["stopped"])
    return None


def _close(engine: Engine, run_id: int, clock: Callable[[], datetime]) -> None:
    with engine.begin() as connection:
        claims.close_round(connection, run_id, clock())


@dataclass(frozen=True)
class Joined:
    """What a worker did for the run it joined."""

    run_id: int | None
    batches: int


def find_run(
    engine: Engine,
    as_of: Any,
    *,
    started_after: datetime | None = None,
    wait_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int | None:
    """The running nightly run of ``as_of`` to join, waiting up to ``wait_seconds`` for it
    to start; None if none did."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with engine.connect() as connection:
            run_id = claims.running_run(connection, as_of, started_after=started_after)
        if run_id is not None or time.monotonic() >= deadline:
            return run_id
        sleep(poll_seconds)


def join_run(
    dispatcher: Dispatcher,
    run_id: int,
    *,
    terms: ClaimTerms,
    holder: str | None = None,
    run_batch: RunBatch | None = None,
    checkpoint: Checkpoint = no_checkpoint,
    sleep: Callable[[float], None] = time.sleep,
) -> Joined:
    """A worker's part of run ``run_id``'s dispatch (see the module docstring)."""
    engine, clock = dispatcher.engine, dispatcher.clock

    def still_running() -> bool:
        with engine.connect() as connection:
            state = claims.round_of(connection, run_id, LEASE_NAME)
        return state is not None and state.run_alive(clock()) and not state.closed

    worked = 0
    while True:
        with engine.connect() as connection:
            state = claims.round_of(connection, run_id, LEASE_NAME)
        if state is None:
            raise StoreError(f"there is no run {run_id} to join")
        # A run that died leaves its night to the next run, which recovers and publishes
        # a round of its own: the workers of the dead one leave.
        if not state.run_alive(clock()) or state.closed:
            return Joined(run_id, worked)
        if state.opened:
            worked += work_batches(
                dispatcher,
                run_id,
                terms=terms,
                holder=holder,
                run_batch=run_batch,
                checkpoint=checkpoint,
                keep_going=still_running,
            )
        sleep(terms.poll_seconds)
