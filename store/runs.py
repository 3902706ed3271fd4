"""The record of nightly runs: when each business date ran and how it ended."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import RowMapping

from store.schema import runs


def _naive_utc(moment: datetime) -> datetime:
    # DateTime columns hold naive UTC.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def start_run(
    connection: Connection,
    as_of: date,
    kind: str,
    flow_run_id: str | None,
    *,
    now: datetime,
    source_digest: str | None = None,
) -> int:
    """Record that a run of ``kind`` for ``as_of`` started at ``now`` on the files of
    ``source_digest`` (``store.sources``); return its id."""
    result = connection.execute(
        insert(runs).values(
            as_of=as_of,
            kind=kind,
            status="running",
            started_at=_naive_utc(now),
            flow_run_id=flow_run_id,
            source_digest=source_digest,
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def finish_run(
    connection: Connection,
    run_id: int,
    status: str,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
    *,
    now: datetime,
) -> None:
    """Record how run ``run_id`` ended, at ``now``."""
    connection.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(status=status, finished_at=_naive_utc(now), summary=summary, error=error)
    )


def crash_abandoned_runs(connection: Connection, *, now: datetime, error: str) -> list[RowMapping]:
    """Mark every run still ``running`` as ``crashed`` and return them (id, as_of,
    flow_run_id). Only for a caller holding the run lease: no such run can be alive."""
    abandoned = list(
        connection.execute(
            select(runs.c.id, runs.c.as_of, runs.c.flow_run_id)
            .where(runs.c.status == "running")
            .order_by(runs.c.id)
        ).mappings()
    )
    if abandoned:
        connection.execute(
            update(runs)
            .where(runs.c.id.in_([r["id"] for r in abandoned]))
            .values(status="crashed", finished_at=_naive_utc(now), error=error)
        )
    return abandoned


def previous_completed_as_of(connection: Connection, before: date) -> date | None:
    """The latest business date before ``before`` whose nightly run completed."""
    value = connection.execute(
        select(runs.c.as_of)
        .where(runs.c.status == "completed", runs.c.kind == "nightly", runs.c.as_of < before)
        .order_by(runs.c.as_of.desc())
        .limit(1)
    ).scalar()
    return value


def latest_completed(connection: Connection) -> RowMapping | None:
    return (
        connection.execute(
            select(runs)
            .where(runs.c.status == "completed", runs.c.kind == "nightly")
            .order_by(runs.c.as_of.desc(), runs.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )


def later_completed_nights(connection: Connection, as_of: date) -> list[date]:
    """The business dates after ``as_of`` whose nightly run completed, oldest first."""
    return list(
        connection.execute(
            select(runs.c.as_of)
            .where(runs.c.status == "completed", runs.c.kind == "nightly", runs.c.as_of > as_of)
            .group_by(runs.c.as_of)
            .order_by(runs.c.as_of)
        ).scalars()
    )


def supersede_later_runs(connection: Connection, as_of: date) -> None:
    """Running an earlier date rewinds stage history, so later nights must be run again."""
    connection.execute(
        update(runs)
        .where(runs.c.as_of > as_of, runs.c.status == "completed")
        .values(status="rewound")
    )
