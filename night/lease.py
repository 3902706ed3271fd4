"""The night's run lease, held by one thread at a time: ``nudgeflow run`` takes it before
Prefect starts, and the flow takes it again (a no-op then) when a scheduler starts it.

``check_lease`` stops a run before its next outside effect when its lease was lost (a
heartbeat failed for long enough that another run could take over).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

from sqlalchemy import Engine

from nudgeflow.errors import StoreError
from nudgeflow.timeutil import Clock
from store.lease import Lease, hold_lease

LEASE_NAME = "nightly"

_held = threading.local()


@contextmanager
def night_lease(engine: Engine, as_of: date | None, clock: Clock) -> Iterator[Lease | None]:
    """Hold the ``nightly`` lease (heartbeats timed by ``clock``), unless this thread
    already does."""
    if getattr(_held, "lease", None) is not None:
        yield _held.lease
        return
    with hold_lease(engine, LEASE_NAME, as_of=as_of, clock=clock) as lease:
        _held.lease = lease
        try:
            yield lease
        finally:
            _held.lease = None


def check_lease() -> None:
    """Raise ``StoreError`` if this thread's lease was lost."""
    lease = getattr(_held, "lease", None)
    if lease is not None and lease.lost:
        raise StoreError(
            "the run lease was lost (its heartbeat could not be written before it expired): "
            "stopping before the next batch; run the night again"
        )
