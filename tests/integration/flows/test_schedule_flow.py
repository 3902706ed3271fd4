"""The deployment's entry point through the Prefect engine: with no ``as_of`` it works on
the business day before the run was due; with one, on that day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bootstrap.app import process_app
from nudgeflow.timeutil import previous_business_day
from store.schema import runs

ROOT = Path(__file__).resolve().parents[3]
ZONE = "Pacific/Auckland"  # far from UTC, so "yesterday in UTC" would be a different day
pytestmark = pytest.mark.prefect


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NUDGEFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    monkeypatch.setenv("NUDGEFLOW_CAMPAIGNS_DIR", str(ROOT / "campaigns"))
    monkeypatch.setenv("NUDGEFLOW_TEMPLATES_DIR", str(ROOT / "templates/email"))
    monkeypatch.setenv("NUDGEFLOW_EMAIL__OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", ZONE)
    process_app.cache_clear()
    yield
    process_app().engine.dispose()
    process_app.cache_clear()


def test_scheduled_nightly_runs_the_previous_business_day(
    prefect_harness: None, app_env: None
) -> None:
    from flows.schedule import scheduled_nightly

    assert scheduled_nightly(as_of=date(2026, 5, 1))["as_of"] == "2026-05-01"

    zone = ZoneInfo(ZONE)
    before = previous_business_day(datetime.now(UTC), zone)
    summary = scheduled_nightly()
    after = previous_business_day(datetime.now(UTC), zone)
    assert summary["as_of"] in {before.isoformat(), after.isoformat()}  # midnight may pass

    with process_app().engine.connect() as connection:
        nights = connection.execute(sa.select(runs.c.as_of, runs.c.status)).all()
    assert [(n.as_of.isoformat(), n.status) for n in nights] == [
        ("2026-05-01", "completed"),
        (summary["as_of"], "completed"),
    ]
