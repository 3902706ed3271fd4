"""A run killed mid-night does not stay "running" for ever: the next run marks it crashed,
in ``nudgeflow runs`` and in the Prefect UI."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
import sqlalchemy as sa

from bootstrap.app import process_app
from store.schema import runs
from tests.integration.flows.test_nightly_flow import app_env  # noqa: F401 (the fixture)

pytestmark = pytest.mark.prefect


def test_the_next_run_marks_a_run_left_running_as_crashed(
    prefect_harness: None,
    app_env: str,  # noqa: F811
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Running

    from flows.nightly import nightly

    first = nightly(date(2026, 5, 1))
    killed = first["flow_run_id"]
    # What a SIGKILL leaves behind: the run's row and its Prefect flow run both "running".
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(killed), Running(), force=True)
    engine = process_app().engine
    with engine.begin() as connection:
        connection.execute(
            sa.update(runs)
            .where(runs.c.flow_run_id == killed)
            .values(status="running", finished_at=None, summary=None)
        )

    nightly(date(2026, 5, 1))

    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(runs.c.status, runs.c.error, runs.c.finished_at).order_by(runs.c.id)
        ).all()
    assert [r.status for r in rows] == ["crashed", "completed"]
    assert "crashed" in (rows[0].error or "") and rows[0].finished_at is not None
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(killed)).state
    assert state is not None and state.type == StateType.CRASHED
