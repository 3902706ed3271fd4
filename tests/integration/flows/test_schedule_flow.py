"""The deployment's entry point through the Prefect engine: with no ``as_of`` it works on
the business day before the run was due; with one, on that day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID
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


def test_flow_runs_are_named_for_their_night(prefect_harness: None, app_env: None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.nightly import nightly
    from flows.schedule import scheduled_nightly

    scheduled = scheduled_nightly(as_of=date(2026, 11, 28))
    rehearsed = nightly(date(2026, 11, 29), dry_run=True)
    # No as_of: named for the business day before the run was due (in Auckland).
    unnamed = scheduled_nightly()

    ids = [scheduled["flow_run_id"], rehearsed["flow_run_id"], unnamed["flow_run_id"]]
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in ids]))
        )
        # The runs of the scheduled flow that started the two nightly ones.
        parents = [
            client.read_flow_run(client.read_task_run(run.parent_task_run_id).flow_run_id)
            for run in found
            if run.parent_task_run_id is not None and run.name != "nightly-2026-11-29-dry-run"
        ]
    names = {str(run.id): run.name for run in found}
    assert [names[i] for i in ids] == [
        "nightly-2026-11-28",
        "nightly-2026-11-29-dry-run",
        f"nightly-{unnamed['as_of']}",
    ]
    # The scheduled runs that started them carry the same names.
    assert sorted(parent.name for parent in parents) == sorted(
        ["nightly-2026-11-28", f"nightly-{unnamed['as_of']}"]
    )
