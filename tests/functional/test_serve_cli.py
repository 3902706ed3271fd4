"""`nudgeflow serve` as a user runs it: without a Prefect server it says how to start one,
a bad cron is named, and `--check` against a server prints the next runs and stops."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fakes.prefect_health import closed_port_url, health_server
from tests.functional.runner import Nudgeflow


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow) -> Nudgeflow:
    """The functional settings (no Prefect profile or server of the developer's leaks in),
    the schedule in New York."""
    return nudgeflow.configure(timeout=60, NUDGEFLOW_TIMEZONE="America/New_York")


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_without_prefect_api_url_it_says_how_to_start_a_server(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    result = nudgeflow("serve")
    assert result.returncode == 1
    line = _one_error_line(result)
    assert "PREFECT_API_URL is not set" in line
    assert "prefect server start" in line
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in line
    assert not (tmp_path / "nudgeflow.db").exists()  # nothing touched before the check


def test_with_no_server_at_prefect_api_url_it_says_how_to_start_one(nudgeflow: Nudgeflow) -> None:
    url = closed_port_url()
    result = nudgeflow("serve", "--check", PREFECT_API_URL=url)
    assert result.returncode == 1
    line = _one_error_line(result)
    assert f"no Prefect server answers at {url}" in line
    assert "prefect server start" in line


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [(["--cron", "0 2 * *"], {}), ([], {"NUDGEFLOW_SCHEDULE__CRON": "0 2 * *"})],
)
def test_a_bad_cron_exits_2_naming_it(
    nudgeflow: Nudgeflow, args: list[str], extra_env: dict[str, str]
) -> None:
    # Checked before the server: the cron is wrong wherever serving would happen.
    result = nudgeflow("serve", *args, **extra_env, PREFECT_API_URL=closed_port_url())
    assert result.returncode == 2
    line = _one_error_line(result)
    assert "NUDGEFLOW_SCHEDULE__CRON / --cron: '0 2 * *' is not a cron expression" in line


def test_check_prints_the_deployment_and_next_runs_without_serving(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    with health_server() as url:
        result = nudgeflow("serve", "--check", "--cron", "30 1 * * *", PREFECT_API_URL=url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "deployment: nightly-scheduled/nightly"
    assert lines[1] == "schedule:   30 1 * * * (America/New_York), previous business day"
    assert lines[2] == f"server:     {url}"
    runs = [line for line in lines if line.startswith("next run:")]
    assert len(runs) == 3
    assert all(" 01:30 E" in run and " for the night of " in run for run in runs)
    assert lines[-1].startswith("check passed; not serving")
    assert (tmp_path / "nudgeflow.db").exists()  # the database was opened and migrated
