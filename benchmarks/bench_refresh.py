"""Profile refresh vs one bare aggregate pass over the same events (SQLite).

    python benchmarks/bench_refresh.py --members 100000 [--workdir DIR]

Generates a sample community (``nudgeflow demo-data``, ~10 events per member over a year),
imports it through ``store.importer``, then times the nightly refresh for the last day next
to the floor no refresh can beat: one ``GROUP BY member_pk`` pass over ``events`` plus one
``NTILE`` over ``members``, in the same database.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.demodata import generate
from nudgeflow.timeutil import day_end
from planning.lifecycle_file import load_lifecycle
from store.engine import create_store_engine
from store.importer import import_file
from store.migrate import upgrade
from store.profiles import refresh_profiles

ROOT = Path(__file__).resolve().parents[1]
END = date(2026, 10, 31)
FLOOR_AGGREGATE = (
    "SELECT count(*) FROM (SELECT member_pk, count(*), sum(amount_minor), max(occurred_at) "
    "FROM events WHERE occurred_at < :end GROUP BY member_pk) AS t"
)
FLOOR_NTILE = "SELECT count(*) FROM (SELECT ntile(5) OVER (ORDER BY member_id) FROM members) AS t"


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def run(members: int, workdir: Path) -> dict[str, float]:
    workdir.mkdir(parents=True, exist_ok=True)
    generated = time.perf_counter()
    _, events = generate(workdir, members, 365, 1, END)
    generate_seconds = time.perf_counter() - generated

    database = workdir / "refresh.db"
    database.unlink(missing_ok=True)
    engine = create_store_engine(f"sqlite:///{database}")
    upgrade(engine)
    import_members = _timed(lambda: import_file(engine, "members", workdir / "members.csv"))
    import_events = _timed(lambda: import_file(engine, "events", workdir / "events.csv"))

    lifecycle = load_lifecycle(ROOT / "campaigns")
    as_of_end = day_end(END, ZoneInfo("UTC"))

    def refresh() -> None:
        with engine.begin() as connection:
            refresh_profiles(connection, lifecycle, END, as_of_end, "USD")

    def floor() -> None:
        import sqlalchemy as sa

        with engine.connect() as connection:
            connection.execute(sa.text(FLOOR_AGGREGATE), {"end": as_of_end}).scalar()
            connection.execute(sa.text(FLOOR_NTILE)).scalar()

    refresh_seconds = _timed(refresh)
    floor_seconds = _timed(floor)
    engine.dispose()
    figures = {
        "members": float(members),
        "events": float(events),
        "generate_seconds": generate_seconds,
        "import_members_seconds": import_members,
        "import_events_seconds": import_events,
        "refresh_seconds": refresh_seconds,
        "floor_seconds": floor_seconds,
        "refresh_over_floor": refresh_seconds / floor_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for name, value in figures.items():
        print(f"{name:>26}: {value:,.2f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.workdir is not None:
        run(args.members, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="bench_refresh_") as tmp:
        run(args.members, Path(tmp))


if __name__ == "__main__":
    main()
