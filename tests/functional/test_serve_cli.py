"""`nudgeflow serve` as a user runs it: without a Prefect server it says how to start one,
a bad cron is named, and `--check` against a server prints the next runs and stops."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.prefect_health import closed_port_url, health_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("nudgeflow") or str(Path(sys.executable).parent / "nudgeflow")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: no Prefect profile or server of the developer's leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUDGEFLOW_", "PREFECT_"))}
    env.update(
        NUDGEFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'nudgeflow.db'}",
        NUDGEFLOW_CAMPAIGNS_DIR=str(ROOT / "campaigns"),
        NUDGEFLOW_TEMPLATES_DIR=str(ROOT / "templates/email"),
        NUDGEFLOW_TIMEZONE="America/New_York",
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    return env


def _serve(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, "serve", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_without_prefect_api_url_it_says_how_to_start_a_server(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = _serve(env, tmp_path)
    assert result.returncode == 1
    line = _one_error_line(result)
    assert "PREFECT_API_URL is not set" in line
    assert "prefect server start" in line
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in line
    assert not (tmp_path / "nudgeflow.db").exists()  # nothing touched before the check


def test_with_no_server_at_prefect_api_url_it_says_how_to_start_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = closed_port_url()
    result = _serve({**env, "PREFECT_API_URL": url}, tmp_path, "--check")
    assert result.returncode == 1
    line = _one_error_line(result)
    assert f"no Prefect server answers at {url}" in line
    assert "prefect server start" in line


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [(["--cron", "0 2 * *"], {}), ([], {"NUDGEFLOW_SCHEDULE__CRON": "0 2 * *"})],
)
def test_a_bad_cron_exits_2_naming_it(
    env: dict[str, str], tmp_path: Path, args: list[str], extra_env: dict[str, str]
) -> None:
    # Checked before the server: the cron is wrong wherever serving would happen.
    result = _serve({**env, **extra_env, "PREFECT_API_URL": closed_port_url()}, tmp_path, *args)
    assert result.returncode == 2
    line = _one_error_line(result)
    assert "NUDGEFLOW_SCHEDULE__CRON / --cron: '0 2 * *' is not a cron expression" in line


def test_check_prints_the_deployment_and_next_runs_without_serving(
    env: dict[str, str], tmp_path: Path
) -> None:
    with health_server() as url:
        result = _serve(
            {**env, "PREFECT_API_URL": url}, tmp_path, "--check", "--cron", "30 1 * * *"
        )
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
