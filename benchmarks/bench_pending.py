"""What approvals cost the dispatch's first query: the night's pending action ids.

    python benchmarks/bench_pending.py --members 20000 --nights 30 [--database-url URL]

Since approvals, ``store.outbox.pending_ids`` also returns the actions of earlier nights
that were approved since (an ``EXISTS`` on ``approvals``). The database holds one action
per member and night, nearly all ``sent``; the last night has 1 % of its actions pending,
and 0.2 % of each earlier night's actions waited for approval, each with its ``approvals``
row: of the last week's, half still wait and half were approved since and are due for
dispatch (``reserved``); the older ones were approved and sent long ago.
The figures, each the median of 21 runs of the query: ``pending_ids`` as it is, and the
bare query of before (the night's pending states only) in the same run, on the same data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from store.engine import create_store_engine  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.outbox import PENDING, pending_ids  # noqa: E402
from store.schema import actions, approvals, members  # noqa: E402

AS_OF = date(2026, 11, 20)
STAMP = datetime(2026, 11, 1)
BATCH = 20_000


def _members(count: int) -> Iterator[dict[str, Any]]:
    for pk in range(1, count + 1):
        yield {
            "id": pk,
            "member_id": f"m{pk}",
            "email": f"m{pk}@example.com",
            "email_opt_in": True,
            "row_hash": "-",
            "created_at": STAMP,
            "updated_at": STAMP,
        }


RECENT = 7  # nights whose approvals are still waiting or due for dispatch


def _state(pk: int, night: int, nights: int) -> str:
    if night == nights - 1:
        return "planned" if pk % 100 == 0 else "sent"
    if pk % 500 == 0 and night >= nights - 1 - RECENT:
        return "reserved" if night % 2 else "awaiting_approval"
    return "sent"


def _actions(count: int, nights: int) -> Iterator[dict[str, Any]]:
    first = AS_OF - timedelta(days=nights - 1)
    for night in range(nights):
        day = first + timedelta(days=night)
        for pk in range(1, count + 1):
            yield {
                "action_id": f"a{night}-{pk}",
                "campaign_id": "bench",
                "member_pk": pk,
                "occurrence": day.isoformat(),
                "as_of": day,
                "state": _state(pk, night, nights),
                "holdout": False,
                "cost_minor": 7500,
                "template": "t",
                "response_types": [],
                "response_from": 0,
                "response_until": 0,
                "created_at": STAMP,
                "updated_at": STAMP,
            }


def _approvals(count: int, nights: int) -> Iterator[dict[str, Any]]:
    for night in range(nights - 1):
        for pk in range(500, count + 1, 500):
            approved = night % 2 == 1 or night < nights - 1 - RECENT
            yield {
                "action_id": f"a{night}-{pk}",
                "threshold": "50.00 USD",
                "requested_at": STAMP,
                "expires_at": STAMP + timedelta(days=7),
                "decision": "approved" if approved else None,
                "decided_by": "bench" if approved else None,
                "decided_at": STAMP if approved else None,
            }


def _insert(engine: sa.Engine, table: sa.Table, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    with engine.begin() as connection:
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                connection.execute(sa.insert(table), batch)
                batch = []
        if batch:
            connection.execute(sa.insert(table), batch)


def build(url: str, count: int, nights: int) -> sa.Engine:
    engine = create_store_engine(url)
    upgrade(engine)
    _insert(engine, members, _members(count))
    _insert(engine, actions, _actions(count, nights))
    _insert(engine, approvals, _approvals(count, nights))
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    return engine


def _before(connection: sa.Connection, as_of: date) -> list[str]:
    """The query of before approvals: the night's pending actions only."""
    a = actions.c
    query = (
        sa.select(a.action_id)
        .where(a.as_of == as_of, a.state.in_(PENDING))
        .order_by(a.campaign_id, a.member_pk)
    )
    return [row[0] for row in connection.execute(query)]


def _median(engine: sa.Engine, query: Any) -> tuple[float, int]:
    times, found = [], 0
    with engine.connect() as connection:
        for _ in range(21):
            started = time.perf_counter()
            found = len(query(connection, AS_OF))
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--database-url", help="an empty database (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nudgeflow_bench_") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'pending.db'}"
        engine = build(url, args.members, args.nights)
        try:
            bare, night_only = _median(engine, _before)
            new, with_approved = _median(engine, pending_ids)
        finally:
            engine.dispose()
    print(f"actions: {args.members * args.nights:,}")
    print(f"pending tonight: {night_only:,}")
    print(f"pending with approved of earlier nights: {with_approved:,}")
    print(f"bare query of before ms: {bare:.2f}")
    print(f"pending_ids ms: {new:.2f}")
    print(f"ratio: {new / bare:.2f}")


if __name__ == "__main__":
    main()
