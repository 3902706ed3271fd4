"""Forgetting a member, and the import's check for forgotten members (SQLite).

    python benchmarks/bench_erasure.py --members 100000 [--forget 5] [--workdir DIR]

Generates a sample community (``nudgeflow demo-data``, ~10 events per member over a year)
and imports it. Then:

- ``forget_seconds``: ``night.erasure.forget_member`` of one member (the mean over
  ``--forget`` members), next to its floor, ``scan_seconds``: one bare ``LIKE`` pass over
  every event's properties as text, which forgetting cannot avoid (another member's event
  may name the one forgotten);
- ``reimport_seconds`` / ``reimport_checked_seconds``: the members file imported again
  (every row unchanged) without the check, then with it against the forgotten references
  (an HMAC per member id and per email).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from demo.demodata import generate
from night.erasure import forget_member
from store.engine import create_store_engine
from store.importer import Returning, import_file
from store.migrate import upgrade

END = date(2026, 10, 31)
KEY = "bench-erasure-signing-key"
SCAN = (
    "SELECT count(*) FROM events WHERE properties IS NOT NULL "
    "AND lower(CAST(properties AS TEXT)) LIKE :pattern ESCAPE '\\'"
)


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def run(members: int, forget: int, workdir: Path) -> dict[str, float]:
    workdir.mkdir(parents=True, exist_ok=True)
    _, events = generate(workdir, members, 365, 1, END)
    database = workdir / "erasure.db"
    database.unlink(missing_ok=True)
    engine = create_store_engine(f"sqlite:///{database}")
    upgrade(engine)
    import_file(engine, "members", workdir / "members.csv")
    import_file(engine, "events", workdir / "events.csv")
    with engine.connect() as connection:
        chosen = list(
            connection.execute(
                sa.text("SELECT member_id FROM members ORDER BY id LIMIT :n"), {"n": forget}
            ).scalars()
        )

    def scan() -> None:
        with engine.connect() as connection:
            connection.execute(sa.text(SCAN), {"pattern": "%nobody@example.invalid%"}).scalar()

    scan_seconds = _timed(scan)
    outbox = workdir / "outbox"
    started = time.perf_counter()
    for member_id in chosen:
        forget_member(
            engine,
            member_id,
            signing_key=KEY,
            outbox_dir=outbox,
            erased_by="bench",
            reason=None,
            clock=lambda: datetime.now(UTC),
        )
    forget_seconds = (time.perf_counter() - started) / len(chosen)

    members_csv = workdir / "members.csv"
    reimport = _timed(lambda: import_file(engine, "members", members_csv))
    checked = _timed(lambda: import_file(engine, "members", members_csv, returning=Returning(KEY)))
    engine.dispose()
    return {
        "members": float(members),
        "events": float(events),
        "forgotten": float(len(chosen)),
        "scan_seconds": scan_seconds,
        "forget_seconds": forget_seconds,
        "forget_over_scan": forget_seconds / scan_seconds,
        "reimport_seconds": reimport,
        "reimport_checked_seconds": checked,
        "check_overhead": checked / reimport,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--forget", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    if args.workdir is not None:
        figures = run(args.members, args.forget, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="nudgeflow_bench_") as tmp:
            figures = run(args.members, args.forget, Path(tmp))
    for name, value in figures.items():
        print(f"{name}: {value:,.3f}")


if __name__ == "__main__":
    main()
