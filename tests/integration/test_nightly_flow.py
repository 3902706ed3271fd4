"""The nightly and backfill flows through the Prefect engine (one harness per session)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from nudgeflow.bootstrap import get_app
from nudgeflow.timeutil import day_end
from store.schema import runs
from tests.integration.community import DAY, Person, insert_people

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.prefect


@pytest.fixture
def app_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NUDGEFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("NUDGEFLOW_CAMPAIGNS_DIR", str(ROOT / "campaigns"))
    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", "Europe/Paris")
    get_app.cache_clear()
    yield db_url
    get_app().engine.dispose()
    get_app.cache_clear()


def test_backfill_runs_each_night_in_order_and_records_runs(
    prefect_harness: None, app_env: str
) -> None:
    from flows.nightly import backfill, nightly

    end = day_end(date(2026, 5, 1), ZoneInfo("Europe/Paris"))
    people = [
        Person("ann", None, [EventFact("purchase", end - 10 * DAY, 1000, "USD")]),
        Person("bob", None, [EventFact("purchase", end - n * DAY, 1000, "USD") for n in (1, 5, 9)]),
    ]
    engine = get_app().engine  # migrated on first use
    with engine.begin() as connection:
        insert_people(connection, people)

    nights = backfill(date(2026, 4, 29), date(2026, 5, 1))
    assert [n["as_of"] for n in nights] == ["2026-04-29", "2026-04-30", "2026-05-01"]
    assert nights[0]["previous_as_of"] is None
    assert nights[1]["stages"] == {"adopter": 2}  # bob's third purchase is on 1 May
    assert nights[2]["previous_as_of"] == "2026-04-30"
    assert nights[2]["moves"] == [{"from": "adopter", "to": "loyalist", "members": 1}]

    again = nightly(date(2026, 5, 1))  # the same night twice: the same funnel
    assert again["stages"] == nights[2]["stages"]
    assert again["moves"] == nights[2]["moves"]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(runs.c.as_of, runs.c.status, runs.c.flow_run_id)).all()
    assert [(r.as_of.isoformat(), r.status) for r in rows] == [
        ("2026-04-29", "completed"),
        ("2026-04-30", "completed"),
        ("2026-05-01", "completed"),
        ("2026-05-01", "completed"),
    ]
    assert all(r.flow_run_id for r in rows)
