"""Working the inbox alone: CPU per pending SendGrid row, no server.

    python benchmarks/bench_inbox.py [--rows 40000] [--repeat 3] [--database-url URL]
                                     [--workdir DIR]

A database of 10,000 members with one sent action each gets ``--rows`` pending inbox rows
of one SendGrid event each (delivered, open, click in turn), as the service stores single
events; ``inbound.inbox.work_inbox`` then works them all, as ``nudgeflow inbox work`` and
the service's worker do. The figure is its CPU time per row (the median of ``--repeat``
runs, each on a fresh database). Next to it, measured in the same runs, the bare floor:
the same events, already mapped, written to ``events`` by one plain ``executemany`` of the
driver, no parsing, no lookup and no claiming. Without ``--database-url``, SQLite in a
workdir; a PostgreSQL URL names a database this script empties first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from bench_webhooks import prepare, signed_requests  # puts the checkout on sys.path
from cryptography.hazmat.primitives.asymmetric import ec


def fresh(url: str) -> None:
    """An empty database at ``url``: the SQLite file removed, PostgreSQL's tables dropped."""
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).unlink(missing_ok=True)
        return
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def one_run(url: str, rows: int) -> tuple[float, float]:
    """CPU µs per row: working the inbox, and the bare ``executemany`` of the same events."""
    from inbound.inbox import work_inbox
    from store.engine import create_store_engine, write_transaction
    from store.inbox import store_requests

    fresh(url)
    action_ids = prepare(url, 10_000)
    key = ec.generate_private_key(ec.SECP256R1())
    bodies = [line.split("\t")[2] for line in signed_requests(key, action_ids, rows, 1, "w")]
    engine = create_store_engine(url)
    received = int(time.time())
    with write_transaction(engine) as connection:
        store_requests(connection, [("sendgrid", body, received) for body in bodies])
    started = time.process_time()
    result = work_inbox(engine, ZoneInfo("UTC"), lambda: datetime.now(UTC))
    worked = time.process_time() - started
    assert result.done == rows and result.effects == {"email events recorded": rows}, result

    # The floor: the same rows, mapped already, written again by the driver alone into the
    # emptied ``events`` (the same table, the same indexes).
    with engine.begin() as connection:
        found = connection.execute(
            sa.text("SELECT event_id, member_pk, type, occurred_at, properties FROM events")
        ).all()
        connection.execute(sa.text("DELETE FROM events"))
    mapped = [(e, pk, kind, at, json.dumps(props)) for e, pk, kind, at, props in found]
    mark = "?" if url.startswith("sqlite") else "%s"
    statement = (
        "INSERT INTO events (event_id, member_pk, type, occurred_at, properties) "
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})"
    )
    raw = engine.raw_connection()
    try:
        started = time.process_time()
        cursor = raw.cursor()
        for start in range(0, rows, 1_000):
            cursor.executemany(statement, mapped[start : start + 1_000])
            raw.commit()
        bare = time.process_time() - started
    finally:
        raw.close()
    engine.dispose()
    return worked / rows * 1e6, bare / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: SQLite in the workdir")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nudgeflow_bench_inbox_"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    runs = [one_run(url, args.rows) for _ in range(args.repeat)]
    worked = statistics.median(run[0] for run in runs)
    bare = statistics.median(run[1] for run in runs)
    print(f"runs (worked, bare executemany), CPU µs per row: {runs}")
    print(f"work_cpu_us_per_row: {worked:.1f}")
    print(f"bare_executemany_cpu_us_per_row: {bare:.1f}")
    print(f"work_over_bare: {worked / bare:.2f}")


if __name__ == "__main__":
    main()
