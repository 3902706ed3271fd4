"""On a work pool the nightly flow starts its extra dispatch workers as flow runs of the
``dispatch-worker`` deployment (``run_deployment``, not waited for), each told which run
to join; outside a deployment it starts none (``nudgeflow run --workers`` has)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.integration.flows.test_nightly_flow import app_env  # noqa: F401 (the fixture)

pytestmark = pytest.mark.prefect
AS_OF = date(2026, 5, 1)


def started_from_a_flow(monkeypatch: pytest.MonkeyPatch, deployment_id: str | None) -> list[Any]:
    import prefect.deployments
    from prefect import flow

    from bootstrap.app import process_app
    from flows.nightly import start_worker_flow_runs

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.deployments, "run_deployment", lambda **kw: calls.append(kw))
    if deployment_id is not None:
        monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", deployment_id)

    @flow(name="worker-start-test")
    def starting() -> None:
        start_worker_flow_runs(process_app(), AS_OF, 7, 2)

    starting()
    return calls


def test_in_a_deployment_the_workers_are_flow_runs_of_the_worker_deployment(
    prefect_harness: None,
    app_env: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = started_from_a_flow(monkeypatch, "7b0e5c8e-5b7a-4b3e-9a57-3f4b8f7c2d11")
    assert [c["name"] for c in calls] == ["dispatch-worker/dispatch-worker"] * 2
    assert all(c["parameters"] == {"as_of": AS_OF, "run_id": 7} for c in calls)
    assert all(c["timeout"] == 0 for c in calls)  # started, not waited for
    assert [c["flow_run_name"] for c in calls] == [
        "dispatch-worker-2026-05-01-1",
        "dispatch-worker-2026-05-01-2",
    ]


def test_outside_a_deployment_it_starts_none(
    prefect_harness: None,
    app_env: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert started_from_a_flow(monkeypatch, None) == []
