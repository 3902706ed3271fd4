"""``nudgeflow pathways`` through the real console script: the crafted community's figures
as JSON and as text, and a broken pathway file as one located line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from store.engine import create_store_engine
from store.migrate import upgrade
from tests.functional.runner import Nudgeflow
from tests.integration import pathway_community as pc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, tmp_path: Path) -> Nudgeflow:
    """The shipped campaigns with the crafted pathway, the crafted community, in Paris."""
    campaigns = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", campaigns)
    shutil.rmtree(campaigns / "pathways")
    (campaigns / "pathways").mkdir()
    (campaigns / "pathways" / "crafted.yaml").write_text(json.dumps(pc.PATHWAY_FILE))
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    pc.build(engine)
    engine.dispose()
    return nudgeflow.configure(
        NUDGEFLOW_CAMPAIGNS_DIR=str(campaigns), NUDGEFLOW_TIMEZONE="Europe/Paris"
    )


def test_pathways_json(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("pathways", "--as-of", "2026-06-30", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["as_of"] == "2026-06-30"
    [pathway] = document["pathways"]
    assert pathway["id"] == "retention-to-advocacy"
    assert (pathway["started"], pathway["ended"], pathway["ended_share"]) == (4, 2, 0.5)
    assert [(a["id"], a["completed"], a["share"]) for a in pathway["key_actions"]] == [
        ("answered", 2, 0.5),
        ("guest-post", 2, 0.5),
    ]
    purchases = pathway["indicators"][0]
    assert (purchases["on_pathway"], purchases["off_pathway"]) == (0.75, 2.0)
    assert pathway["median_days_to_end"] > 0


def test_pathways_text(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("pathways", "--as-of", "2026-06-30")
    assert result.returncode == 0, result.stderr
    assert "retention-to-advocacy: Retention to advocacy" in result.stdout
    assert "started 4 · reached the end 2 (50.0%)" in result.stdout
    assert "guest-post" in result.stdout


BROKEN = (
    "id: broken\nname: Broken\nstart: {stage: loyalist}\n"
    "key_actions:\n  - {id: a, events: {type: x, min: 0}}\n"
    "end: {stage: advocte}\ntarget_impact: more\n"
)


def test_a_broken_pathway_file_is_one_located_line(nudgeflow: Nudgeflow) -> None:
    folder = Path(nudgeflow.env["NUDGEFLOW_CAMPAIGNS_DIR"]) / "pathways"
    (folder / "broken.yaml").write_text(BROKEN.replace("advocte", "advocate"))
    result = nudgeflow("pathways", "--as-of", "2026-06-30", "--json")
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert "pathways/broken.yaml:5:31: key_actions[0].events.min:" in line
    assert "Traceback" not in result.stderr


def test_validate_reports_every_problem_of_a_pathway_file(nudgeflow: Nudgeflow) -> None:
    folder = Path(nudgeflow.env["NUDGEFLOW_CAMPAIGNS_DIR"]) / "pathways"
    (folder / "broken.yaml").write_text(BROKEN)
    result = nudgeflow("validate")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if "broken.yaml" in line]
    assert [line.split("broken.yaml:")[1] for line in lines] == [
        "5:31: key_actions[0].events.min: must be from 1 to 1000, got 0",
        "6:7: end.stage: unknown stage 'advocte' (did you mean 'advocate'?)",
    ]
