"""The record of a night's runs: opening one (and first closing the runs a dead process
left ``running``), and closing it as completed or failed.

A run is opened only under the ``nightly`` lease, so any other run still marked ``running``
belongs to a holder that died or whose lease expired: it is marked ``crashed`` instead of
staying ``running`` for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from domain.provenance import Provenance
from nudgeflow.errors import NudgeflowError
from nudgeflow.timeutil import Clock
from store.runs import crash_abandoned_runs, finish_run, later_completed_nights, start_run
from store.sources import record_source


class RewindRefused(NudgeflowError):
    """A real run of a night before nights already run, without ``--rewind``."""


def nights_to_rewind(
    engine: Engine, as_of: date, *, rewind: bool, through: date | None = None
) -> list[date]:
    """The completed nights after ``as_of`` (after ``through`` for a catch-up that runs
    ``as_of``..``through``, which runs the nights in between again) that running it would
    rewind: their profiles and stage history are recomputed from ``as_of``, so they must be
    run again. Raise ``RewindRefused`` naming them unless ``rewind`` says to go ahead."""
    with engine.connect() as connection:
        later = [
            day
            for day in later_completed_nights(connection, as_of)
            if through is None or day > through
        ]
    if later and not rewind:
        listed = ", ".join(day.isoformat() for day in later)
        raise RewindRefused(
            f"night {as_of} is before nights already run ({listed}): running it would rewind "
            "their profiles and stage history. Run the nights in order, or pass --rewind to "
            "rewind them (then run them again)"
        )
    return later


@dataclass(frozen=True)
class AbandonedRun:
    """A run a dead process left ``running``, now ``crashed``."""

    run_id: int
    as_of: date
    flow_run_id: str | None


@dataclass(frozen=True)
class OpenedRun:
    run_id: int
    crashed: tuple[AbandonedRun, ...]  # the runs it found abandoned and closed


def open_run(
    engine: Engine,
    as_of: date,
    kind: str,
    flow_run_id: str | None,
    clock: Clock,
    provenance: Provenance | None = None,
) -> OpenedRun:
    """Close the abandoned runs and record a new one (hold the run lease), with the files it
    works from (``night.provenance``) when given."""
    now = clock()
    with engine.begin() as connection:
        abandoned = crash_abandoned_runs(
            connection,
            now=now,
            error="crashed: the process running it stopped (its run lease was taken over)",
        )
        digest = None
        if provenance is not None:
            record_source(connection, provenance, now=now)
            digest = provenance.digest
        run_id = start_run(connection, as_of, kind, flow_run_id, now=now, source_digest=digest)
    crashed = tuple(AbandonedRun(r["id"], r["as_of"], r["flow_run_id"]) for r in abandoned)
    return OpenedRun(run_id, crashed)


def close_run(
    engine: Engine,
    run_id: int,
    status: str,
    clock: Clock,
    *,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record how the run ended: ``completed`` with its summary, or ``failed`` with why."""
    with engine.begin() as connection:
        finish_run(connection, run_id, status, summary=summary, error=error, now=clock())
