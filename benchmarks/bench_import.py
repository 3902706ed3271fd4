"""Events import vs a bare ``executemany`` of the same rows into an identical SQLite table,
or, on PostgreSQL, vs a bare ``\\copy`` of the same file by psql.

    python benchmarks/bench_import.py --events 1000000 [--workdir DIR [--reuse]] [--no-bare]
    python benchmarks/bench_import.py --events 1000000 --db postgres [--postgres-url URL]

Writes a synthetic members file and an events file of the given size, imports both through
``store.importer`` into a fresh SQLite database, then times a plain ``executemany`` of the
same (already parsed) event rows into a second fresh database with the same schema. The
ratio import/bare is the figure that means something on a noisy shared machine.

``--reuse`` (with ``--workdir``) keeps the generated files and a copy of the database holding
only the members, and reuses them on the next run of the same size: re-measuring the events
import at 10 M then skips writing the files and importing a million members (minutes).

``--db postgres`` creates a database of its own on the server ``--postgres-url`` names (the
default: the local server), imports the members and the events into it (the events by COPY,
``store.importer.postgres_events``), then times psql's ``\\copy`` of the same events file
into a plain table of seven text columns in the same database (the floor for loading that
file at all), and drops the database.
"""

from __future__ import annotations

import argparse
import csv
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from postgres_bench import DEFAULT_URL, bench_database, psql_copy_seconds

from store.engine import create_store_engine
from store.importer import import_file
from store.migrate import upgrade

EVENTS_PER_MEMBER = 10
TYPES = ("purchase", "login", "email_opened", "email_clicked", "community_post")
START = 1_700_000_000  # 2023-11-14, epoch seconds
INSERT = (
    "INSERT INTO events (event_id, member_pk, type, occurred_at, amount_minor, currency, "
    "properties, import_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _member_count(size_events: int) -> int:
    return max(1, size_events // EVENTS_PER_MEMBER)


def _event(i: int, members: int) -> tuple[str, int, str, int, int | None, str | None, str | None]:
    """Event ``i`` as stored: (event_id, member number, type, epoch, minor, currency, props)."""
    kind = TYPES[i % len(TYPES)]
    purchase = kind == "purchase"
    properties = f'{{"sku": "A-{i % 97}"}}' if i % 100 == 0 else None
    amount = 1000 + i % 9000 if purchase else None
    return (
        f"e{i:010d}",
        i % members,
        kind,
        START + i * 3,
        amount,
        "USD" if purchase else None,
        properties,
    )


def write_files(size_events: int, workdir: Path, *, reuse: bool = False) -> tuple[Path, Path]:
    members = _member_count(size_events)
    members_path = workdir / "members.csv"
    events_path = workdir / "events.csv"
    stamp = workdir / "size.txt"
    if reuse and stamp.exists() and stamp.read_text() == str(size_events):
        return members_path, events_path
    stamp.unlink(missing_ok=True)
    (workdir / "members.db").unlink(missing_ok=True)  # a snapshot of other files' members
    with members_path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["member_id", "email", "first_name", "joined_at", "country", "tags"])
        for m in range(members):
            writer.writerow(
                [f"m{m}", f"user{m}@example.com", f"User {m}", "2023-01-01", "us", "a;b"]
            )
    with events_path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["event_id", "member_id", "type", "occurred_at", "amount", "currency", "properties"]
        )
        for i in range(size_events):
            event_id, member, kind, at, minor, currency, properties = _event(i, members)
            moment = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            amount = f"{minor // 100}.{minor % 100:02d}" if minor is not None else ""
            writer.writerow(
                [event_id, f"m{member}", kind, moment, amount, currency or "", properties or ""]
            )
    stamp.write_text(str(size_events))
    return members_path, events_path


def _fresh_engine(path: Path) -> Any:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def _bare_rows(size_events: int, import_id: int) -> Iterator[tuple[Any, ...]]:
    members = _member_count(size_events)
    for i in range(size_events):
        event_id, member, kind, at, minor, currency, properties = _event(i, members)
        yield (event_id, member + 1, kind, at, minor, currency, properties, import_id)


def _members_engine(workdir: Path, members_path: Path, reuse: bool) -> tuple[Any, int, float]:
    """A database holding the members: imported now, or copied from the snapshot kept."""
    path, snapshot = workdir / "import.db", workdir / "members.db"
    if reuse and snapshot.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(snapshot, path)
        engine = create_store_engine(f"sqlite:///{path}")
        return engine, _member_count(int((workdir / "size.txt").read_text())), float("nan")
    engine = _fresh_engine(path)
    started = time.perf_counter()
    members_result = import_file(engine, "members", members_path)
    members_seconds = time.perf_counter() - started
    if reuse:
        engine.dispose()  # the last connection checkpoints the WAL into the file
        shutil.copyfile(path, snapshot)
    return engine, members_result.imported, members_seconds


def run(
    size_events: int, workdir: Path, *, reuse: bool = False, bare: bool = True
) -> dict[str, float]:
    """Measure one import of ``size_events`` events; return (and print) the figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    members_path, events_path = write_files(size_events, workdir, reuse=reuse)

    engine, members_imported, members_seconds = _members_engine(workdir, members_path, reuse)
    started = time.perf_counter()
    events_result = import_file(engine, "events", events_path)
    import_seconds = time.perf_counter() - started
    engine.dispose()
    assert events_result.imported == size_events, events_result.summary()
    figures = {
        "events": float(size_events),
        "import_seconds": import_seconds,
        "events_per_second": size_events / import_seconds,
    }
    if bare:
        bare_seconds = _bare_seconds(size_events, workdir)
        figures["bare_executemany_seconds"] = bare_seconds
        figures["ratio"] = import_seconds / bare_seconds
    figures["members"] = float(members_imported)
    figures["members_import_seconds"] = members_seconds
    figures["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The events import's reader process (a large file), which runs beside this one.
    figures["reader_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for name, value in figures.items():
        print(f"{name:>26}: {value:,.2f}")
    return figures


def run_postgres(
    size_events: int, workdir: Path, url: str, *, reuse: bool = False
) -> dict[str, float]:
    """The import into a PostgreSQL database of its own, next to psql's bare ``\\copy``."""
    workdir.mkdir(parents=True, exist_ok=True)
    members_path, events_path = write_files(size_events, workdir, reuse=reuse)
    with bench_database(url) as database:
        engine = create_store_engine(database)
        upgrade(engine)
        started = time.perf_counter()
        members_result = import_file(engine, "members", members_path)
        members_seconds = time.perf_counter() - started
        started = time.perf_counter()
        events_result = import_file(engine, "events", events_path)
        import_seconds = time.perf_counter() - started
        assert events_result.imported == size_events, events_result.summary()
        started = time.perf_counter()
        again = import_file(engine, "events", events_path)
        again_seconds = time.perf_counter() - started
        assert again.unchanged == size_events and again.imported == 0, again.summary()
        engine.dispose()
        bare_seconds = psql_copy_seconds(database, events_path, 7)
    figures = {
        "events": float(size_events),
        "import_seconds": import_seconds,
        "events_per_second": size_events / import_seconds,
        "bare_copy_seconds": bare_seconds,
        "ratio": import_seconds / bare_seconds,
        "reimport_seconds": again_seconds,
        "members": float(members_result.imported),
        "members_import_seconds": members_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reader_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    for name, value in figures.items():
        print(f"{name:>26}: {value:,.2f}")
    return figures


def _bare_seconds(size_events: int, workdir: Path) -> float:
    # The same members (pks 1..n in file order) so the bare insert meets the same foreign key.
    bare = _fresh_engine(workdir / "bare.db")
    with bare.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(
            "INSERT INTO imports (kind, source, started_at, imported, updated, "
            "unchanged, rejected) VALUES ('events', 'bench', '2024-01-01', 0, 0, 0, 0)"
        )
        cursor.executemany(
            "INSERT INTO members (member_id, email, email_opt_in, row_hash, created_at, "
            "updated_at) VALUES (?, ?, 1, '', '2024-01-01', '2024-01-01')",
            ((f"m{m}", f"user{m}@example.com") for m in range(_member_count(size_events))),
        )
    with bare.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        started = time.perf_counter()
        cursor.executemany(INSERT, _bare_rows(size_events, 1))
        bare_seconds = time.perf_counter() - started
    bare.dispose()
    return bare_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="keep and reuse the files and members (--workdir)"
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare executemany")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url", default=DEFAULT_URL, help="a server to create a database on"
    )
    args = parser.parse_args()
    if args.reuse and args.workdir is None:
        parser.error("--reuse needs --workdir")
    if args.db == "postgres":
        if args.workdir is not None:
            run_postgres(args.events, args.workdir, args.postgres_url, reuse=args.reuse)
            return
        with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
            run_postgres(args.events, Path(tmp), args.postgres_url)
        return
    if args.workdir is not None:
        run(args.events, args.workdir, reuse=args.reuse, bare=not args.no_bare)
        return
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        run(args.events, Path(tmp), bare=not args.no_bare)


if __name__ == "__main__":
    main()
