"""``nudgeflow impact`` through the real console script, on a SQLite file holding synthetic
campaigns with a known effect (treated respond at 30 %, held out at 10 %) and without one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.engine import create_store_engine
from store.migrate import upgrade
from tests.functional.runner import Nudgeflow
from tests.integration.impact_world import AS_OF, world


@pytest.fixture
def measured(tmp_path: Path) -> Path:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    world(engine, "works", treated=900, held_out=300, rates=(0.30, 0.10), seed=21)
    world(engine, "idle", treated=300, held_out=60, rates=(0.15, 0.15), seed=22)
    engine.dispose()
    return tmp_path


def test_impact_json_finds_the_known_effect_and_no_effect(
    nudgeflow: Nudgeflow, measured: Path
) -> None:
    result = nudgeflow("impact", "--json")
    assert result.returncode == 0, result.stderr
    found = {c["id"]: c for c in json.loads(result.stdout)["campaigns"]}
    works, idle = found["works"], found["idle"]
    required = {
        "id", "variant", "treated", "held_out", "treated_responded", "held_out_responded",
        "uplift", "uplift_low", "uplift_high", "revenue_uplift_minor", "cost_minor",
        "currency", "cost_per_incremental_response_minor",
    }  # fmt: skip
    assert required <= works.keys()
    assert (works["treated"], works["held_out"], works["variant"]) == (900, 300, None)
    assert works["uplift_low"] <= 0.20 <= works["uplift_high"]
    assert works["uplift_low"] > 0
    assert works["uplift"] == pytest.approx(
        works["treated_responded"] / 900 - works["held_out_responded"] / 300
    )
    assert works["currency"] == "USD"
    assert works["cost_minor"] == 0 and works["cost_per_incremental_response_minor"] == 0
    assert idle["uplift_low"] <= 0 <= idle["uplift_high"]
    assert idle["cost_per_incremental_response_minor"] is None
    assert "no measurable effect" in idle["verdict"]


def test_impact_table_says_what_it_found_in_words(nudgeflow: Nudgeflow, measured: Path) -> None:
    result = nudgeflow("impact", "--from", AS_OF.isoformat(), "--to", AS_OF.isoformat())
    assert result.returncode == 0, result.stderr
    assert "Impact, nights 2026-03-02 to 2026-03-02" in result.stdout
    assert "works: raised responses by" in result.stdout
    assert "idle: no measurable effect yet" in result.stdout
    assert "more members needed for a 5-point effect" in result.stdout


def test_impact_filters_and_errors(nudgeflow: Nudgeflow, measured: Path) -> None:
    result = nudgeflow("impact", "--campaign", "idle", "--json")
    assert [c["id"] for c in json.loads(result.stdout)["campaigns"]] == ["idle"]
    result = nudgeflow("impact", "--campaign", "nope")
    assert result.returncode == 0
    assert "no sent or held-out actions of campaign nope in the period" in result.stdout
    result = nudgeflow("impact", "--from", "2026-03-05", "--to", "2026-03-01")
    assert result.returncode == 2
    assert "--to is before --from" in result.stderr
    assert "Traceback" not in result.stderr
