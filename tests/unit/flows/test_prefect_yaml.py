"""``flows/prefect.yaml``, the project file for work pools, read the way ``prefect deploy``
reads it: its entry point loads the scheduled flow and its schedule parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROJECT_FILE = ROOT / "flows" / "prefect.yaml"


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    loaded = yaml.safe_load(PROJECT_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _deployment(project: dict[str, Any], name: str) -> dict[str, Any]:
    (deployment,) = [d for d in project["deployments"] if d["name"] == name]
    return deployment  # type: ignore[no-any-return]


def _nightly(project: dict[str, Any]) -> dict[str, Any]:
    return _deployment(project, "nightly")


def test_prefect_accepts_the_file(project: dict[str, Any]) -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(project)
    assert [d.name for d in model.deployments] == ["nightly", "dispatch-worker"]
    for deployment in model.deployments:
        assert deployment.work_pool is not None
        assert deployment.work_pool.name == "nudgeflow"
    assert model.pull is not None
    assert next(iter(model.pull[0])) == "prefect.deployments.steps.set_working_directory"


def test_the_entrypoint_is_the_scheduled_flow(project: dict[str, Any]) -> None:
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    from flows.schedule import scheduled_nightly

    path, _, name = _nightly(project)["entrypoint"].partition(":")
    assert (ROOT / path).is_file()
    assert name == scheduled_nightly.fn.__name__
    # As a worker loads it: by file path, relative to the project root.
    loaded = load_flow_from_entrypoint(f"{ROOT / path}:{name}")
    assert isinstance(loaded, Flow)
    assert loaded.name == scheduled_nightly.name


def test_the_schedule_is_the_default_cron_in_the_business_zone(
    project: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.utilities.templating import apply_values

    from settings.app import ScheduleSettings

    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", "Europe/Paris")
    (entry,) = apply_values(_nightly(project)["schedules"], {}, remove_notset=False)
    schedule = CronSchedule(cron=entry["cron"], timezone=entry["timezone"])
    assert schedule.cron == ScheduleSettings().cron
    assert schedule.timezone == "Europe/Paris"


def test_the_worker_deployment_is_the_one_the_nightly_flow_starts(
    project: dict[str, Any],
) -> None:
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    from settings.app import DispatchSettings

    path, _, name = _deployment(project, "dispatch-worker")["entrypoint"].partition(":")
    loaded = load_flow_from_entrypoint(f"{ROOT / path}:{name}")
    assert isinstance(loaded, Flow)
    # run_deployment names a deployment "<flow name>/<deployment name>".
    assert DispatchSettings().worker_deployment == f"{loaded.name}/dispatch-worker"
    assert "schedules" not in _deployment(project, "dispatch-worker")  # only the night starts it
