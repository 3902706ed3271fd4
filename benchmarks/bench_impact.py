"""``nudgeflow impact`` over a month: the set-based counts, the statistics and the ledger.

    python benchmarks/bench_impact.py --members 100000 [--workdir DIR]

Builds a synthetic SQLite database with bulk inserts: members, ~6 events each over the year
(purchases with amounts, clicks, logins), and a month of actions of five campaigns (every
member nudged about once; 10 % held out; one campaign with three variants), treated members
clicking and buying a little more often than held-out ones. Then it times ``impact_report``
for the month next to one bare aggregate pass over ``events`` in the same database (the
floor any query reading every event pays), then the HTML report of the same month
(``nudgeflow report``: impact, the shipped pathways, nights, spend).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from night.html_report import build_report
from night.impact import impact_report
from planning.campaign_files import load_campaign_set
from store.engine import create_store_engine
from store.migrate import upgrade
from store.schema import actions, events, members

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)
START, END = date(2026, 10, 1), date(2026, 10, 31)
DAY = 86_400
EPOCH_START = 1_790_812_800  # 2026-10-01 00:00 UTC
BATCH = 20_000
FLOOR = (
    "SELECT count(*) FROM (SELECT member_pk, count(*), sum(amount_minor), max(occurred_at) "
    "FROM events GROUP BY member_pk) AS t"
)
CAMPAIGNS = ("winback", "loyalist-discount", "review-request", "birthday", "ab-test")


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        connection.execute(sa.insert(table), rows[start : start + BATCH])


def build(engine: sa.Engine, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with engine.begin() as connection:
        _insert(
            connection,
            members,
            [
                {
                    "member_id": f"m{i:07d}",
                    "email": f"m{i}@example.com",
                    "email_opt_in": True,
                    "row_hash": "-",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(n)
            ],
        )
        acts: list[dict[str, Any]] = []
        evs: list[dict[str, Any]] = []
        for pk in range(1, n + 1):
            campaign = CAMPAIGNS[pk % len(CAMPAIGNS)]
            held = rng.random() < 0.10
            day = rng.randrange(31)
            start = EPOCH_START + (day + 1) * DAY
            variant = None if held or campaign != "ab-test" else "abc"[pk % 3]
            acts.append(
                {
                    "action_id": f"a{pk}",
                    "campaign_id": campaign,
                    "member_pk": pk,
                    "occurrence": "once",
                    "as_of": START + timedelta(days=day),
                    "state": "held_out" if held else "sent",
                    "holdout": held,
                    "reward": None,
                    "cost_minor": 0,
                    "template": "t",
                    "variant": variant,
                    "response_types": ["email_clicked", "purchase"],
                    "response_from": start,
                    "response_until": start + 14 * DAY,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            # Background activity over the year, then a response in the window or not.
            for _ in range(5):
                at = EPOCH_START - rng.randrange(330) * DAY + rng.randrange(DAY)
                kind = rng.choice(("purchase", "login", "email_clicked"))
                amount = rng.randrange(500, 20_000) if kind == "purchase" else None
                evs.append(_event(len(evs), pk, kind, at, amount))
            if rng.random() < (0.10 if held else 0.14):
                evs.append(_event(len(evs), pk, "email_clicked", start + DAY, None))
                if rng.random() < 0.5:
                    amount = int(rng.expovariate(1 / 4000)) + 100
                    evs.append(_event(len(evs), pk, "purchase", start + 2 * DAY, amount))
        _insert(connection, actions, acts)
        _insert(connection, events, evs)


def _event(n: int, pk: int, kind: str, at: int, amount: int | None) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "member_pk": pk,
        "type": kind,
        "occurred_at": at,
        "amount_minor": amount,
        "currency": "USD" if amount is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-impact-"))
    engine = create_store_engine(f"sqlite:///{workdir / 'bench.db'}")
    upgrade(engine)
    started = time.perf_counter()
    build(engine, args.members)
    print(f"built {args.members:,} members in {time.perf_counter() - started:.1f}s ({workdir})")
    with engine.connect() as connection:
        started = time.perf_counter()
        connection.execute(sa.text(FLOOR)).scalar_one()
        floor = time.perf_counter() - started
    started = time.perf_counter()
    report = impact_report(engine, start=START, end=END, currency="USD")
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bare aggregate pass over events: {floor:.2f}s")
    print(f"impact for {START}..{END}: {took:.2f}s ({len(report.campaigns)} rows)")
    print(f"peak memory: {peak:.0f} MB")
    for row in report.campaigns:
        print(f"  {row.campaign_id} {row.variant or 'all'}: {row.verdict}")
    # The HTML report of the same month with the shipped campaign set (its pathways read the
    # events too); the synthetic database has no stage history, so its stage charts are empty.
    campaign_set = load_campaign_set(ROOT / "campaigns")
    started = time.perf_counter()
    html = build_report(
        engine,
        campaign_set,
        start=START,
        end=END,
        zone=ZoneInfo("UTC"),
        currency="USD",
        now=NOW.replace(tzinfo=UTC),
    ).html
    took = time.perf_counter() - started
    print(f"report for {START}..{END}: {took:.2f}s ({len(html):,} bytes of HTML)")


if __name__ == "__main__":
    main()
