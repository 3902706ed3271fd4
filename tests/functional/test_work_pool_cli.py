"""The work-pool way of running the nights, with Prefect's own CLI as docs/operations.md
tells an operator to: `prefect work-pool create`, `prefect deploy --prefect-file
flows/prefect.yaml --all`, `prefect deployment ls`, then `prefect worker start` picks up a
run of the nightly flow, which is named for its night and works on it."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.functional.runner import ROOT, Nudgeflow

pytestmark = pytest.mark.prefect

PREFECT = str(Path(sys.executable).parent / "prefect")
SHIPPED_DIRECTORY = "directory: /srv/nudgeflow # change to the checkout on the worker's machine"


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, prefect_api_url: str) -> Nudgeflow:
    """The functional settings against the session's Prefect server, in Paris, run from
    the project root as the deploy instructions say."""
    return nudgeflow.configure(
        cwd=ROOT,
        timeout=300,
        PREFECT_API_URL=prefect_api_url,
        NUDGEFLOW_TIMEZONE="Europe/Paris",
        NUDGEFLOW_REPORTS_DIR=str(nudgeflow.cwd / "reports"),
    )


def prefect(nudgeflow: Nudgeflow, *args: str) -> subprocess.CompletedProcess[str]:
    """Prefect's own console script, with the same settings and directory as nudgeflow's."""
    result = subprocess.run(
        [PREFECT, "--no-prompt", *args],
        cwd=nudgeflow.cwd,
        env=dict(nudgeflow.env),
        capture_output=True,
        text=True,
        timeout=nudgeflow.timeout,
        check=False,
    )
    assert result.returncode == 0, f"prefect {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_deploy_the_shipped_prefect_yaml_and_a_worker_runs_a_night(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    # The one edit docs/operations.md asks for: the checkout on the worker's machine.
    shipped = (ROOT / "flows" / "prefect.yaml").read_text()
    assert shipped.count(SHIPPED_DIRECTORY) == 1
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(shipped.replace(SHIPPED_DIRECTORY, f"directory: {ROOT}"))

    prefect(nudgeflow, "work-pool", "create", "nudgeflow", "--type", "process")
    prefect(nudgeflow, "deploy", "--prefect-file", str(prefect_file), "--all")
    listed = prefect(nudgeflow, "deployment", "ls").stdout
    assert "nightly-scheduled/nightly" in listed
    assert "nudgeflow" in listed  # its work pool

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("nightly-scheduled/nightly")
        schedules = deployment.schedules
        limit = deployment.global_concurrency_limit
        assert limit is not None and limit.limit == 1  # one night at a time
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in schedules] == [  # type: ignore[union-attr]
        ("0 2 * * *", "Europe/Paris", True)
    ]

    prefect(nudgeflow, "deployment", "run", "nightly-scheduled/nightly", "-p", "as_of=2026-11-28")
    worker = prefect(nudgeflow, "worker", "start", "--pool", "nudgeflow", "--run-once")
    assert "Flow run 'nightly-2026-11-28' - Finished in state Completed()" in worker.stdout + (
        worker.stderr
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        flows = {flow.id: flow.name for flow in client.read_flows()}
    named = sorted(
        (flows[run.flow_id], run.name, run.state_name)
        for run in runs
        if run.name.startswith("nightly-2026-11-28")
    )
    # The deployment's run and the nightly flow it starts, both named for the night.
    assert named == [
        ("nightly", "nightly-2026-11-28", "Completed"),
        ("nightly-scheduled", "nightly-2026-11-28", "Completed"),
    ]
    engine = sa.create_engine(nudgeflow.env["NUDGEFLOW_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            nights = connection.execute(sa.text("SELECT as_of, status FROM runs")).all()
    finally:
        engine.dispose()
    assert [(str(n.as_of), n.status) for n in nights] == [(str(date(2026, 11, 28)), "completed")]
