"""Planning a night: candidates (SQL), guard facts (SQL) and the planner, 20 campaigns.

    python benchmarks/bench_plan.py --members 100000 [--campaigns 20] [--workdir DIR]
    python benchmarks/bench_plan.py --members 100000 --db postgres [--postgres-url URL]

Builds a synthetic SQLite database with bulk inserts (members with join dates, birthdays and
opt-outs; ~6 events each over two years: purchases, logins, clicks, reviews, a few
unsubscribes; the preference centre's choices of 1.5% of them: categories left, some
rejoined, pauses in force and over), refreshes the profiles for two nights, plans and
stores the first night so the second sees earlier actions (caps, cooldowns, budgets), and
then times the second
night's plan — ``select_candidates`` + ``gather_guards`` + ``StoredBudgets`` +
``plan_night`` — which is the figure with a limit (30 s for 1 M members × 20 campaigns).
Next to it: one bare aggregate pass over ``events`` in the same database, the floor that
any audience touching events has to pay; and the refresh of the measured night plus its plan
over that pass. ``--db postgres`` builds the same data (by COPY) in a PostgreSQL database of
its own on the server ``--postgres-url`` names, and drops it after.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from postgres_bench import DEFAULT_URL, bench_database

from domain.campaign import Campaign
from domain.plan import NightInput
from night.plan import plan_stored_night
from nudgeflow.timeutil import day_end, day_start
from planning.campaign_files import CampaignSet
from planning.campaign_spec import CampaignSpec, PolicySpec
from planning.compile import compile_campaign, compile_policy
from planning.lifecycle_file import load_lifecycle
from planning.planner import plan_night
from store.actions import store_plan
from store.audience_sql import select_candidates
from store.engine import create_store_engine
from store.fatigue import update_fatigue
from store.guard_facts import StoredBudgets, gather_guards
from store.migrate import upgrade
from store.profiles import refresh_profiles
from store.runs import finish_run, start_run

ROOT = Path(__file__).resolve().parents[1]
ZONE = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 1, tzinfo=UTC)  # bookkeeping time of the stored rows
AS_OF = date(2026, 10, 31)
DAY = 86_400
# The same floor as bench_refresh.py: it reads every event row, as the audiences' pass does.
FLOOR = (
    "SELECT count(*) FROM (SELECT member_pk, count(*), sum(amount_minor), max(occurred_at) "
    "FROM events WHERE occurred_at < :end GROUP BY member_pk) AS t"
)

# Twenty varied campaigns: every trigger kind, profile criteria, rules over events, spend,
# tags and attributes, holdouts, budgets and run limits.
_ONCE = {"once_per_member": True}
VARIANTS: list[dict[str, Any]] = [
    {"audience": {"stage": "adopter"}, "trigger": {"on": "stage_entry"}, "eligibility": _ONCE},
    {
        "audience": {"stage": "loyalist", "entered_stage": {"within": "14d"}},
        "trigger": {"on": "stage_entry"},
        "eligibility": {"once_per_member": True, "holdout": {"percent": 10, "salt": "q4"}},
        "reward": {"kind": "discount", "percent_off": 15, "cost_estimate": "9.00 USD"},
        "budget": {"total": "5000.00 USD", "per_month": "1000.00 USD"},
    },
    {"audience": {"stage": "advocate"}, "trigger": {"on": "stage_entry"}, "eligibility": _ONCE},
    {
        "audience": {"stage": ["loyalist", "advocate"]},
        "trigger": {"on": "event", "types": ["review_posted"]},
        "eligibility": {"cooldown": "30d"},
    },
    {
        "audience": {"stage": "adopter", "last_purchase": {"within": "30d"}},
        "trigger": {"on": "event", "types": ["purchase"]},
        "eligibility": {"cooldown": "60d", "max_per_run": 500},
    },
    {"audience": {"stage": ["adopter", "loyalist", "advocate"]}, "trigger": {"on": "birthday"}},
    {
        "audience": {"tenure": {"min": "365d"}},
        "trigger": {"on": "anniversary"},
        "reward": {"kind": "credit", "amount": "5.00 USD"},
        "budget": {"per_month": "2000.00 USD"},
    },
    {
        "audience": {"stage": ["loyalist", "advocate"]},
        "trigger": {"on": "anniversary", "of": "first_purchase", "years": 1},
    },
    {
        "audience": {"stage": "loyalist"},
        "trigger": {"on": "inactivity", "for": "90d"},
        "eligibility": {"cooldown": "90d", "holdout": {"percent": 20, "salt": "wb"}},
    },
    {
        "audience": {"stage": "adopter"},
        "trigger": {"on": "inactivity", "types": ["login"], "for": "60d"},
        "eligibility": {"cooldown": "60d"},
    },
    {
        "audience": {"rfm": {"segment": ["champions"]}},
        "trigger": {"on": "schedule"},
        "eligibility": {"cooldown": "30d", "max_per_run": 2000},
        "reward": {"kind": "gift", "item": "mug", "item_cost": "6.00 USD"},
        "budget": {"total": "3000.00 USD"},
    },
    {
        "audience": {"rfm": {"segment": ["at_risk", "hibernating"]}, "score": {"max": 20}},
        "trigger": {"on": "schedule"},
        "eligibility": {"cooldown": "45d"},
    },
    {
        "audience": {"score": {"min": 40}, "tags": {"none_of": ["staff", "nudge-fatigued"]}},
        "trigger": {"on": "schedule"},
        "eligibility": _ONCE,
    },
    {
        "audience": {"spend": {"min": "200.00 USD", "within": "365d"}, "country": ["US", "GB"]},
        "trigger": {"on": "schedule"},
        "eligibility": {"cooldown": "120d"},
    },
    {
        "audience": {"events": {"type": ["email_clicked"], "min": 3, "within": "90d"}},
        "trigger": {"on": "schedule"},
        "eligibility": {"cooldown": "60d"},
    },
    {
        "audience": {
            "any_of": [
                {"events": {"type": "review_posted", "min": 2}},
                {"attributes": {"plan": {"in": ["pro"]}}},
            ]
        },
        "trigger": {"on": "schedule"},
        "eligibility": _ONCE,
    },
    {
        "audience": {
            "stage": "loyalist",
            "not": {"events": {"type": "login", "min": 1, "within": "30d"}},
        },
        "trigger": {"on": "schedule"},
        "eligibility": {"cooldown": "30d"},
    },
    {
        "audience": {"stage": "advocate"},
        "trigger": {"on": "event", "types": ["email_clicked", "login"]},
        "eligibility": {"cooldown": "14d"},
    },
    {
        "audience": {"tenure": {"min": "730d"}, "stage": ["loyalist", "advocate"]},
        "trigger": {"on": "schedule"},
        "eligibility": {"once_per_member": True, "holdout": {"percent": 5, "salt": "t"}},
        "reward": {"kind": "discount", "amount_off": "5.00 USD"},
    },
    {
        "audience": {"last_purchase": {"within": "7d"}, "score": {"min": 10, "max": 200}},
        "trigger": {"on": "schedule"},
        "eligibility": {"cooldown": "30d"},
    },
]


CATEGORIES = ("rewards", "surveys", "community")


def build_campaigns(count: int) -> list[Campaign]:
    campaigns = []
    for i in range(count):
        variant = VARIANTS[i % len(VARIANTS)]
        document = {
            "id": f"c{i:02d}",
            "name": f"Campaign {i}",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "priority": (i * 37) % 100,
            "email": {"template": f"t{i % len(VARIANTS)}", "subject": "Hello"},
            "response": {"counts_as": ["email_clicked", "purchase"], "within": "7d"},
            **variant,
        }
        spec = CampaignSpec.model_validate(document)
        campaigns.append(compile_campaign(spec, f"c{i:02d}.yaml"))
    return campaigns


def _members(count: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    start = day_start(AS_OF, ZONE) - 5 * 365 * DAY
    countries = ("US", "GB", "FR", "DE", None)
    for i in range(count):
        yield (
            f"m{i:07d}",
            f"user{i}@example.com",
            start + rng.randrange(5 * 365 * DAY),
            rng.randint(1, 12),
            rng.randint(1, 31 if rng.random() < 0.5 else 28),
            countries[i % 5],
            0 if rng.random() < 0.02 else 1,
            '{"plan": "pro"}' if i % 50 == 0 else None,
        )


_TYPES = ("purchase", "purchase", "login", "login", "email_clicked", "review_posted")


def _events(count: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    end = day_end(AS_OF, ZONE)
    n = 0
    for pk in range(1, count + 1):
        for _ in range(rng.choice((0, 2, 4, 6, 8, 10, 12))):
            kind = rng.choice(_TYPES)
            n += 1
            purchase = kind == "purchase"
            yield (
                f"e{n}",
                pk,
                kind,
                end - rng.randrange(730 * DAY),
                rng.randrange(500, 20_000) if purchase else None,
                "USD" if purchase else None,
            )
        if pk % 200 == 0:
            n += 1
            yield (f"e{n}", pk, "unsubscribed", end - rng.randrange(365 * DAY), None, None)


def _preferences(count: int, rng: random.Random) -> Iterator[tuple[Any, ...]]:
    """Every 100th member left a category (every 4th of them rejoined it later); every
    200th paused, half of them in force tonight."""
    end = day_end(AS_OF, ZONE)
    for pk in range(100, count + 1, 100):
        category = CATEGORIES[pk % 3]
        at = end - rng.randrange(365 * DAY)
        said = f'{{"category": "{category}", "source": "preference-centre"}}'
        yield (f"p{pk}-out", pk, "category_unsubscribed", at, said)
        if pk % 400 == 0:
            yield (f"p{pk}-in", pk, "category_resubscribed", at + DAY, said)
    for pk in range(50, count + 1, 200):
        at = end - rng.randrange(20 * DAY) - (0 if pk % 400 == 50 else 120 * DAY)
        said = f'{{"until": {at + 30 * DAY}, "days": 30, "source": "preference-centre"}}'
        yield (f"p{pk}-pause", pk, "nudges_paused", at, said)


def build_database(path: Path, members: int, seed: int = 1) -> tuple[sa.Engine, int]:
    """A migrated SQLite database with synthetic members and events (bulk inserts)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    rng = random.Random(seed)
    with engine.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(
            "INSERT INTO members (member_id, email, joined_at, birth_month, birth_day, country,"
            " email_opt_in, attributes, row_hash, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '-', '2026-01-01', '2026-01-01')",
            _members(members, rng),
        )
        cursor.executemany(
            "INSERT INTO events (event_id, member_pk, type, occurred_at, amount_minor, currency)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            _events(members, rng),
        )
        cursor.executemany(
            "INSERT INTO events (event_id, member_pk, type, occurred_at, properties)"
            " VALUES (?, ?, ?, ?, ?)",
            _preferences(members, rng),
        )
        events = cursor.execute("SELECT count(*) FROM events").fetchone()[0]
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine, int(events)


def build_postgres_database(url: str, members: int, seed: int = 1) -> tuple[sa.Engine, int]:
    """The same data as ``build_database`` in the (empty) PostgreSQL database ``url``, by COPY."""
    engine = create_store_engine(url)
    upgrade(engine)
    rng = random.Random(seed)
    member_columns = (
        "member_id, email, joined_at, birth_month, birth_day, country, email_opt_in, "
        "attributes, row_hash, created_at, updated_at"
    )
    with engine.begin() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY members ({member_columns}) FROM STDIN") as copy:
            created = datetime(2026, 1, 1)
            for m in _members(members, rng):
                copy.write_row((*m[:6], bool(m[6]), m[7], "-", created, created))
        columns = "event_id, member_pk, type, occurred_at, amount_minor, currency"
        with cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:
            for row in _events(members, rng):
                copy.write_row(row)
        columns = "event_id, member_pk, type, occurred_at, properties"
        with cursor.copy(f"COPY events ({columns}) FROM STDIN") as copy:
            for row in _preferences(members, rng):
                copy.write_row(row)
        events = cursor.execute("SELECT count(*) FROM events").fetchone()[0]
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine, int(events)


def _timed(action: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def run(
    members: int, campaigns: int, workdir: Path, postgres: str | None = None
) -> dict[str, float]:
    """Build, refresh, then time planning ``campaigns`` campaigns; print and return figures.
    ``postgres``: the URL of an empty PostgreSQL database to build in (else SQLite)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (engine, events), build_seconds = _timed(
        lambda: (
            build_database(workdir / "plan.db", members)
            if postgres is None
            else build_postgres_database(postgres, members)
        )
    )
    lifecycle = load_lifecycle(ROOT / "campaigns")
    policy = compile_policy(
        PolicySpec.model_validate(
            {
                "frequency_caps": [{"max": 2, "per": "7d"}, {"max": 4, "per": "30d"}],
                "categories": list(CATEGORIES),
            }
        )
    )
    chosen = build_campaigns(campaigns)
    campaign_set = CampaignSet(
        lifecycle, policy, tuple(sorted(chosen, key=lambda c: (-c.priority, c.id))), {}
    )

    def refresh(day: date) -> None:
        with engine.begin() as connection:
            refresh_profiles(connection, lifecycle, day, day_end(day, ZONE), "USD")

    # Night one: found stages, a plan stored, a completed run; night two is the measured one.
    first = AS_OF - timedelta(days=1)
    _, refresh_seconds = _timed(lambda: refresh(first))
    with engine.begin() as connection:
        night = plan_stored_night(connection, campaign_set, first, day_end(first, ZONE), ZONE)
        store_plan(connection, night.plan, first, day_end(first, ZONE), chosen, now=NOW)
        finish_run(
            connection,
            start_run(connection, first, "nightly", None, now=NOW),
            "completed",
            now=NOW,
        )
    del night  # a nightly run plans one night: the first one's plan is not held beside it
    _, refresh_tonight_seconds = _timed(lambda: refresh(AS_OF))

    as_of_end = day_end(AS_OF, ZONE)
    with engine.connect() as connection:
        found, candidates_seconds = _timed(
            lambda: select_candidates(connection, chosen, AS_OF, as_of_end, first, ZONE)
        )
        (states, prior), guards_seconds = _timed(
            lambda: gather_guards(connection, chosen, found, policy, AS_OF, as_of_end)
        )
        budgets, budgets_seconds = _timed(lambda: StoredBudgets(connection, chosen, AS_OF))
        night_input = NightInput(AS_OF, chosen, states, found, prior)
        plan, planner_seconds = _timed(lambda: plan_night(night_input, policy, budgets))
        _, floor_seconds = _timed(
            lambda: connection.execute(sa.text(FLOOR), {"end": as_of_end}).scalar()
        )
    with engine.begin() as connection:
        new, store_seconds = _timed(
            lambda: store_plan(connection, plan, AS_OF, as_of_end, chosen, now=NOW)
        )
        _, fatigue_seconds = _timed(
            lambda: update_fatigue(connection, policy, AS_OF, as_of_end, ZONE)
        )
    engine.dispose()
    plan_seconds = candidates_seconds + guards_seconds + budgets_seconds + planner_seconds
    figures = {
        "members": float(members),
        "events": float(events),
        "campaigns": float(campaigns),
        "build_seconds": build_seconds,
        "refresh_seconds": refresh_seconds,
        "candidates": float(sum(len(v) for v in found.values())),
        "candidate_members": float(len(states)),
        "selected": float(sum(c.selected for c in plan.campaigns)),
        "select_candidates_seconds": candidates_seconds,
        "gather_guards_seconds": guards_seconds + budgets_seconds,
        "planner_seconds": planner_seconds,
        "plan_seconds": plan_seconds,
        "floor_seconds": floor_seconds,
        "plan_over_floor": plan_seconds / floor_seconds,
        "refresh_tonight_seconds": refresh_tonight_seconds,
        "refresh_plan_over_floor": (refresh_tonight_seconds + plan_seconds) / floor_seconds,
        "store_plan_seconds": store_seconds,
        "new_actions": float(new),
        "update_fatigue_seconds": fatigue_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    for name, value in figures.items():
        print(f"{name:>26}: {value:,.2f}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url", default=DEFAULT_URL, help="a server to create a database on"
    )
    args = parser.parse_args()
    if args.db == "postgres":
        with bench_database(args.postgres_url) as url, tempfile.TemporaryDirectory() as tmp:
            run(args.members, args.campaigns, args.workdir or Path(tmp), postgres=url)
        return
    if args.workdir is not None:
        run(args.members, args.campaigns, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="bench_plan_") as tmp:
        run(args.members, args.campaigns, Path(tmp))


if __name__ == "__main__":
    main()
