"""The set-based profile refresh against the pure reference, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from audience.lifecycle import Lifecycle, engagement_score, segment_of, stage_of
from nudgeflow.timeutil import day_end, to_epoch
from planning.lifecycle_file import load_lifecycle
from store.profiles import funnel, refresh_profiles, stage_moves
from store.schema import profiles, stage_history
from tests.integration.community import DAY, Person, add_events, insert_people, random_community

ROOT = Path(__file__).resolve().parents[3]
UTC = ZoneInfo("UTC")
AS_OF = date(2026, 3, 31)
END = day_end(AS_OF, UTC)


def _lifecycle(name: str) -> Lifecycle:
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(ROOT / "examples/lifecycles" / name, Path(folder) / "lifecycle.yaml")
        return load_lifecycle(Path(folder))


def _refresh(engine: sa.Engine, lifecycle: Lifecycle, as_of: date, zone: ZoneInfo = UTC) -> None:
    with engine.begin() as connection:
        refresh_profiles(connection, lifecycle, as_of, day_end(as_of, zone), "USD")


def _profiles(engine: sa.Engine) -> dict[int, dict[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(profiles)).mappings().all()
    return {row["member_pk"]: dict(row) for row in rows}


def _history(engine: sa.Engine) -> list[tuple[object, ...]]:
    h = stage_history
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(h.c.member_pk, h.c.stage, h.c.entered_on, h.c.left_on, h.c.initial)
        ).all()
    return sorted(tuple(r) for r in rows)


def _ntile5(values: dict[str, tuple[object, ...]]) -> dict[str, int]:
    """SQL's NTILE(5) over rows ordered by the given sort keys."""
    ordered = sorted(values, key=lambda k: values[k])
    size, extra = divmod(len(ordered), 5)
    result, index = {}, 0
    for bucket in range(1, 6):
        for _ in range(size + (1 if bucket <= extra else 0)):
            result[ordered[index]] = bucket
            index += 1
    return result


@pytest.mark.parametrize("preset", ["retention-ladder.yaml", "advocacy-five-stage.yaml"])
def test_refresh_agrees_with_the_pure_reference(engine: sa.Engine, preset: str) -> None:
    lifecycle = _lifecycle(preset)
    people = random_community(seed=11, size=150, end=END)
    with engine.begin() as connection:
        keys = insert_people(connection, people)
    _refresh(engine, lifecycle, AS_OF)
    got = _profiles(engine)

    window_start = END - lifecycle.rfm.window_days * DAY
    purchases: dict[str, list[EventFact]] = {
        p.member_id: [e for e in p.events if e.type == "purchase" and e.occurred_at < END]
        for p in people
    }
    buyers = {m: ps for m, ps in purchases.items() if ps}
    frequency = {m: sum(e.occurred_at >= window_start for e in ps) for m, ps in buyers.items()}
    monetary = {
        m: sum(
            e.amount_minor or 0 for e in ps if e.occurred_at >= window_start and e.currency == "USD"
        )
        for m, ps in buyers.items()
    }
    last = {m: max(e.occurred_at for e in ps) for m, ps in buyers.items()}
    r = _ntile5({m: (last[m], m) for m in buyers})
    f = _ntile5({m: (frequency[m], m) for m in buyers})
    mm = _ntile5({m: (monetary[m], m) for m in buyers})

    for person in people:
        row = got[keys[person.member_id]]
        facts = person.facts()
        assert row["stage"] == stage_of(lifecycle, facts, END), person.member_id
        expected_score = engagement_score(lifecycle.scoring, person.events, END)
        assert row["score"] == pytest.approx(expected_score, abs=1e-6)
        m = person.member_id
        if m not in buyers:
            assert (row["r"], row["f"], row["m"], row["recency_days"]) == (None, None, None, None)
            assert (row["frequency"], row["monetary_minor"]) == (0, 0)
            continue
        assert row["recency_days"] == (END - last[m]) // DAY
        assert (row["frequency"], row["monetary_minor"]) == (frequency[m], monetary[m])
        assert (row["r"], row["f"], row["m"]) == (r[m], f[m], mm[m])
        assert row["segment"] == segment_of(lifecycle.rfm, r[m], f[m], mm[m])
        assert row["as_of"] == AS_OF


def test_running_the_same_date_twice_gives_the_same_profiles(engine: sa.Engine) -> None:
    lifecycle = _lifecycle("retention-ladder.yaml")
    with engine.begin() as connection:
        insert_people(connection, random_community(seed=3, size=80, end=END))
    _refresh(engine, lifecycle, date(2026, 3, 30))
    _refresh(engine, lifecycle, AS_OF)
    first, first_history = _profiles(engine), _history(engine)
    _refresh(engine, lifecycle, AS_OF)
    assert _profiles(engine) == first
    assert _history(engine) == first_history


def test_stage_history_follows_members_up_and_down(engine: sa.Engine) -> None:
    lifecycle = _lifecycle("retention-ladder.yaml")
    day1 = date(2026, 1, 10)
    end1 = day_end(day1, UTC)
    climber = Person("climber", None, [EventFact("purchase", end1 - 5 * DAY, 100, "USD")])
    faller = Person("faller", None, [EventFact("purchase", end1 - 360 * DAY, 100, "USD")] * 3)
    with engine.begin() as connection:
        keys = insert_people(connection, [climber, faller])
    _refresh(engine, lifecycle, day1)  # first refresh: stages found, marked initial

    day2 = date(2026, 1, 16)  # the faller's purchases leave the 365-day window
    with engine.begin() as connection:
        two_more = [EventFact("purchase", end1 + DAY, 100, "USD")] * 2
        add_events(connection, keys, [("climber", e) for e in two_more])
    _refresh(engine, lifecycle, day2)

    with engine.connect() as connection:
        moves = stage_moves(connection, day1, day2)
        summary = funnel(connection, day2)
    assert {(m.from_stage, m.to_stage, m.members) for m in moves} == {
        ("adopter", "loyalist", 1),
        ("loyalist", "adopter", 1),
    }
    assert summary["stages"] == {"adopter": 1, "loyalist": 1}
    assert _history(engine) == sorted(
        [
            (keys["climber"], "adopter", day1, day2, True),
            (keys["climber"], "loyalist", day2, None, False),
            (keys["faller"], "loyalist", day1, day2, True),
            (keys["faller"], "adopter", day2, None, False),
        ]
    )
    got = _profiles(engine)
    assert got[keys["climber"]]["stage_entered_on"] == day2

    # Running the earlier date again rewinds what came after it.
    _refresh(engine, lifecycle, day1)
    assert _history(engine) == sorted(
        [
            (keys["climber"], "adopter", day1, None, True),
            (keys["faller"], "loyalist", day1, None, True),
        ]
    )


def test_the_business_day_ends_at_midnight_in_the_business_time_zone(engine: sa.Engine) -> None:
    lifecycle = _lifecycle("retention-ladder.yaml")
    tokyo = ZoneInfo("Asia/Tokyo")
    # 23:30 in Tokyo on 1 March is 14:30 UTC: inside 1 March there, not yet in UTC terms late.
    late_evening = to_epoch(datetime(2026, 3, 1, 14, 30))
    with engine.begin() as connection:
        insert_people(
            connection, [Person("tokyo", None, [EventFact("purchase", late_evening, 1, "USD")])]
        )
    _refresh(engine, lifecycle, date(2026, 2, 28), tokyo)
    assert next(iter(_profiles(engine).values()))["stage"] is None
    _refresh(engine, lifecycle, date(2026, 3, 1), tokyo)
    assert next(iter(_profiles(engine).values()))["stage"] == "adopter"
