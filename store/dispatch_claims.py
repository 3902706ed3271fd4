"""A night's dispatch shared by worker processes: its round and its claimed batches.

The run that holds the night's lease *publishes* each pass of its dispatch as numbered
batches of action ids (``dispatch_batches``, under the run's ``dispatch_rounds`` row). Any
worker process then *claims* the first batch that is ``ready``, or ``claimed`` by a worker
whose claim has expired, with ``SELECT … FOR UPDATE SKIP LOCKED`` (the queue pattern of
procrastinate, pg-boss, River and Oban): two workers never claim the same batch, and
neither waits for the other's lock. A claim is a lease: its holder moves ``expires_at``
forward by heartbeat while it works, and marks the batch ``done`` with its result when it
is finished. A worker that dies stops heartbeating; once its claim has expired the batch is
claimable again, and the next claim says whose claim it took over.

The claims only share out the work: what each action may still do is decided by its own
state in ``actions`` (``store.outbox``), so a batch worked twice repeats nothing. On SQLite
``FOR UPDATE SKIP LOCKED`` is not rendered and the write lock serialises claims; one worker
is all SQLite allows there anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from store.lease import holder_is_dead
from store.schema import dispatch_batches, dispatch_rounds, run_lease, runs

_B = dispatch_batches.c
_R = dispatch_rounds.c
OPEN_STATES = ("ready", "claimed")


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@dataclass(frozen=True)
class Claim:
    """A batch claimed by ``holder`` until ``expires_at``."""

    run_id: int
    pass_no: int
    batch_no: int
    action_ids: list[str]
    holder: str
    expires_at: datetime
    # The holder whose expired claim this one took over (its worker stopped), if any.
    took_over_from: str | None

    def key(self) -> Any:
        return and_(
            _B.run_id == self.run_id, _B.pass_no == self.pass_no, _B.batch_no == self.batch_no
        )


@dataclass(frozen=True)
class Round:
    """A run's dispatch as workers see it: whether it is open, and its run's status."""

    run_id: int
    as_of: date
    run_status: str
    opened: bool
    closed: bool
    # The night's run lease (``store.lease``) as it stands: its holder and expiry, or None.
    lease_holder: str | None
    lease_expires_at: datetime | None

    def run_alive(self, now: datetime) -> bool:
        """Whether the run may still be at work: ``running``, and the night's lease held
        (not expired, its holder not a dead process of this host)."""
        if self.run_status != "running" or self.lease_holder is None:
            return False
        assert self.lease_expires_at is not None
        return self.lease_expires_at >= _naive_utc(now) and not holder_is_dead(self.lease_holder)


def open_round(
    connection: Connection, run_id: int, as_of: date, pass_no: int, now: datetime
) -> None:
    """Open the run's round at ``pass_no`` (or move it on to that pass)."""
    moved = connection.execute(
        update(dispatch_rounds).where(_R.run_id == run_id).values(pass_no=pass_no)
    ).rowcount
    if not moved:
        connection.execute(
            insert(dispatch_rounds).values(
                run_id=run_id, as_of=as_of, pass_no=pass_no, opened_at=_naive_utc(now)
            )
        )


def close_round(connection: Connection, run_id: int, now: datetime) -> None:
    """The run's dispatch is over: workers that joined it leave; unclaimed batches are
    cancelled (there are none unless the dispatch stopped)."""
    connection.execute(
        update(dispatch_rounds).where(_R.run_id == run_id).values(closed_at=_naive_utc(now))
    )
    cancel_ready(connection, run_id)


def cancel_ready(connection: Connection, run_id: int) -> int:
    """Cancel the run's batches nobody has claimed yet (a provider refused our key)."""
    result = connection.execute(
        update(dispatch_batches)
        .where(_B.run_id == run_id, _B.state == "ready")
        .values(state="cancelled")
    )
    return int(result.rowcount or 0)


def prune(connection: Connection, keep_run_id: int) -> int:
    """Delete the batches of runs that are over (their action ids take room), keeping
    ``keep_run_id``'s and those of runs still ``running``; the rounds stay."""
    running = select(runs.c.id).where(runs.c.status == "running")
    result = connection.execute(
        delete(dispatch_batches).where(_B.run_id != keep_run_id, _B.run_id.not_in(running))
    )
    return int(result.rowcount or 0)


def publish(
    connection: Connection, run_id: int, pass_no: int, batches: Sequence[Sequence[str]]
) -> None:
    """Add the pass's batches, numbered from 0, as ``ready`` (one statement)."""
    if batches:
        connection.execute(
            insert(dispatch_batches),
            [
                {
                    "run_id": run_id,
                    "pass_no": pass_no,
                    "batch_no": n,
                    "action_ids": list(ids),
                    "state": "ready",
                }
                for n, ids in enumerate(batches)
            ],
        )


def claim(
    connection: Connection, run_id: int, holder: str, now: datetime, ttl: timedelta
) -> Claim | None:
    """Claim the run's first claimable batch for ``holder`` until ``now + ttl``; ``None``
    when every batch is done or claimed by a live worker. Commit right after."""
    stamp = _naive_utc(now)
    row = (
        connection.execute(
            select(_B.pass_no, _B.batch_no, _B.action_ids, _B.state, _B.claimed_by)
            .where(
                _B.run_id == run_id,
                or_(_B.state == "ready", and_(_B.state == "claimed", _B.expires_at < stamp)),
            )
            .order_by(_B.pass_no, _B.batch_no)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    expires_at = stamp + ttl
    took_over = row["claimed_by"] if row["state"] == "claimed" else None
    connection.execute(
        update(dispatch_batches)
        .where(_B.run_id == run_id, _B.pass_no == row["pass_no"], _B.batch_no == row["batch_no"])
        .values(
            state="claimed",
            claimed_by=holder,
            claimed_at=stamp,
            expires_at=expires_at,
            claims=_B.claims + 1,
        )
    )
    return Claim(
        run_id,
        int(row["pass_no"]),
        int(row["batch_no"]),
        [str(i) for i in row["action_ids"]],
        holder,
        expires_at,
        str(took_over) if took_over is not None else None,
    )


def renew(connection: Connection, held: Claim, now: datetime, ttl: timedelta) -> bool:
    """Move the claim's expiry to ``now + ttl``; False when it is no longer ours."""
    result = connection.execute(
        update(dispatch_batches)
        .where(held.key(), _B.state == "claimed", _B.claimed_by == held.holder)
        .values(expires_at=_naive_utc(now) + ttl)
    )
    return result.rowcount == 1


def finish(connection: Connection, held: Claim, result: dict[str, Any], now: datetime) -> bool:
    """Mark the claimed batch ``done`` with ``result``; False when the claim was taken
    over meanwhile (the taker records its own result)."""
    done = connection.execute(
        update(dispatch_batches)
        .where(held.key(), _B.state == "claimed", _B.claimed_by == held.holder)
        .values(state="done", result=result, finished_at=_naive_utc(now))
    )
    return done.rowcount == 1


def open_batches(connection: Connection, run_id: int, pass_no: int) -> int:
    """How many of the pass's batches are not finished yet (ready or claimed)."""
    return int(
        connection.execute(
            select(func.count()).where(
                _B.run_id == run_id, _B.pass_no == pass_no, _B.state.in_(OPEN_STATES)
            )
        ).scalar_one()
    )


def results(connection: Connection, run_id: int) -> list[dict[str, Any]]:
    """The results of the run's finished batches, in order."""
    query = (
        select(_B.result)
        .where(_B.run_id == run_id, _B.state == "done")
        .order_by(_B.pass_no, _B.batch_no)
    )
    return [dict(r[0]) for r in connection.execute(query) if r[0] is not None]


def round_of(connection: Connection, run_id: int, lease_name: str = "nightly") -> Round | None:
    """The run and its round, as a worker that joined it sees them; None without the run."""
    row = (
        connection.execute(
            select(runs.c.id, runs.c.as_of, runs.c.status, _R.opened_at, _R.closed_at)
            .select_from(runs.outerjoin(dispatch_rounds, _R.run_id == runs.c.id))
            .where(runs.c.id == run_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    lease = (
        connection.execute(
            select(run_lease.c.holder, run_lease.c.expires_at).where(run_lease.c.name == lease_name)
        )
        .mappings()
        .first()
    )
    return Round(
        int(row["id"]),
        row["as_of"],
        str(row["status"]),
        row["opened_at"] is not None,
        row["closed_at"] is not None,
        str(lease["holder"]) if lease else None,
        lease["expires_at"] if lease else None,
    )


def running_run(
    connection: Connection, as_of: date, *, started_after: datetime | None = None
) -> int | None:
    """The id of the latest nightly run of ``as_of`` still ``running`` (started after
    ``started_after``, when given), or None."""
    query = select(runs.c.id).where(
        runs.c.as_of == as_of, runs.c.kind == "nightly", runs.c.status == "running"
    )
    if started_after is not None:
        query = query.where(runs.c.started_at >= _naive_utc(started_after))
    value = connection.execute(query.order_by(runs.c.id.desc()).limit(1)).scalar()
    return int(value) if value is not None else None
