"""The night's fatigue steps: recovery before the plan, tagging after dispatch.

    python benchmarks/bench_fatigue.py --members 100000 [--nights 14] [--workdir DIR [--reuse]]

Builds a synthetic SQLite database with bulk inserts: the members and events of
``bench_plan.py``, and for every member a nudge a night for ``--nights`` nights from a daily
campaign with a one-day response window (the members fatigue exists for: nudged more often
than their window), plus a weekly campaign with a seven-day window for every third member.
About a third of the members click inside one of their windows; one in ten nudges is held
out; one member in twenty is already resting, and half of those engaged since their rest
began. Then times recovery (``recover_fatigued``) and tagging (``tag_fatigued``) as of the
last night, each in its own transaction, with ``unanswered_nudges: 6``. ``--reuse`` times a
fresh copy of the database an earlier run left in ``--workdir`` instead of building it again.
Run from a checkout older than the split, it times that code's single ``update_fatigue``
instead: that is how the "before" figure in docs/performance.md was measured.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from bench_plan import AS_OF, DAY, ZONE, build_database

from domain.campaign import Policy
from nudgeflow.timeutil import day_end
from planning.campaign_spec import PolicySpec
from planning.compile import compile_policy
from store import fatigue as store_fatigue
from store.engine import create_store_engine
from store.migrate import upgrade

DAILY = json.dumps(["email_clicked"])
WEEKLY = json.dumps(["email_clicked", "purchase"])
STAMP = "2026-11-01 00:00:00"


def _actions(members: int, nights: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    first = AS_OF - timedelta(days=nights - 1)
    for pk in range(1, members + 1):
        for n in range(nights):
            day = first + timedelta(days=n)
            end = day_end(day, ZONE)
            held = rng.random() < 0.1
            yield _action("daily", pk, day, held, DAILY, end, end + DAY)
            if pk % 3 == 0 and n % 7 == 0:
                yield _action("weekly", pk, day, held, WEEKLY, end, end + 7 * DAY)


def _action(
    campaign: str, pk: int, day: date, held: bool, types: str, start: int, until: int
) -> tuple[Any, ...]:
    return (
        f"{campaign}-{pk}-{day.isoformat()}",
        campaign,
        pk,
        day.isoformat(),
        day.isoformat(),
        "held_out" if held else "sent",
        1 if held else 0,
        types,
        start,
        until,
    )


def _responses(members: int, nights: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    first = AS_OF - timedelta(days=nights - 1)
    for pk in range(1, members + 1):
        if rng.random() < 1 / 3:
            day = first + timedelta(days=rng.randrange(nights))
            at = day_end(day, ZONE) + rng.randrange(DAY)
            yield (f"click-{pk}", pk, "email_clicked", at)


def _rests(members: int) -> Iterator[tuple[Any, ...]]:
    began = AS_OF - timedelta(days=20)
    for pk in range(1, members + 1, 20):
        yield (pk, began.isoformat(), (began + timedelta(days=89)).isoformat())


def _engaged(members: int) -> Iterator[tuple[Any, ...]]:
    since = day_end(AS_OF - timedelta(days=10), ZONE)
    for pk in range(1, members + 1, 40):
        yield (f"login-{pk}", pk, "login", since + pk % DAY)


def build(path: Path, members: int, nights: int) -> tuple[sa.Engine, int]:
    """bench_plan's database plus the nudges, responses and rests described above."""
    engine, _ = build_database(path, members)
    rng = random.Random(2)
    with engine.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(
            "INSERT INTO actions (action_id, campaign_id, member_pk, occurrence, as_of, state,"
            " holdout, cost_minor, template, response_types, response_from, response_until,"
            f" created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 't', ?, ?, ?,"
            f" '{STAMP}', '{STAMP}')",
            _actions(members, nights, rng),
        )
        cursor.executemany(
            "INSERT INTO events (event_id, member_pk, type, occurred_at) VALUES (?, ?, ?, ?)",
            _responses(members, nights, rng),
        )
        cursor.executemany(
            "INSERT INTO events (event_id, member_pk, type, occurred_at) VALUES (?, ?, ?, ?)",
            _engaged(members),
        )
        cursor.executemany(
            "INSERT INTO member_tags (member_pk, tag, source, added_on, expires_on)"
            " VALUES (?, 'nudge-fatigued', 'system', ?, ?)",
            _rests(members),
        )
        actions = cursor.execute("SELECT count(*) FROM actions").fetchone()[0]
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine, int(actions)


def _timed(action: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def _steps(engine: sa.Engine, policy: Policy) -> dict[str, float]:
    """Time recovery and tagging, or the single ``update_fatigue`` of older code."""
    end = day_end(AS_OF, ZONE)
    recover = getattr(store_fatigue, "recover_fatigued", None)
    tag = getattr(store_fatigue, "tag_fatigued", None)
    if recover is None or tag is None:
        with engine.begin() as connection:
            result, seconds = _timed(
                lambda: store_fatigue.update_fatigue(connection, policy, AS_OF, end, ZONE)
            )
        return {
            "recovered": float(result.recovered),
            "tagged": float(result.tagged),
            "fatigue_seconds": seconds,
        }
    with engine.begin() as connection:
        recovered, recover_seconds = _timed(lambda: recover(connection, policy, AS_OF, end, ZONE))
    with engine.begin() as connection:
        tagged, tag_seconds = _timed(lambda: tag(connection, policy, AS_OF, end, ZONE))
    return {
        "recovered": float(recovered),
        "tagged": float(tagged),
        "recover_seconds": recover_seconds,
        "tag_seconds": tag_seconds,
        "fatigue_seconds": recover_seconds + tag_seconds,
    }


def run(members: int, nights: int, workdir: Path, reuse: bool = False) -> dict[str, float]:
    """Build (or reuse), then time the fatigue steps on a copy; print and return the figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    built = workdir / "fatigue.db"
    build_seconds = 0.0
    if not (reuse and built.exists()):
        (engine, _), build_seconds = _timed(lambda: build(built, members, nights))
        engine.dispose()
    copy = workdir / "timed.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(built, copy)
    engine = create_store_engine(f"sqlite:///{copy}")
    upgrade(engine)  # a database kept from older code gains the tables this code needs
    with engine.connect() as connection:
        actions = connection.exec_driver_sql("SELECT count(*) FROM actions").scalar_one()
    policy = compile_policy(
        PolicySpec.model_validate({"fatigue": {"unanswered_nudges": 6, "rest_for": "90d"}})
    )
    steps = _steps(engine, policy)
    engine.dispose()
    figures = {
        "members": float(members),
        "actions": float(actions),
        "build_seconds": build_seconds,
        **steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for name, value in figures.items():
        print(f"{name:>26}: {value:,.2f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--nights", type=int, default=14)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="reuse the workdir's database")
    args = parser.parse_args()
    if args.workdir is not None:
        run(args.members, args.nights, args.workdir, args.reuse)
        return
    with tempfile.TemporaryDirectory(prefix="bench_fatigue_") as tmp:
        run(args.members, args.nights, Path(tmp))


if __name__ == "__main__":
    main()
