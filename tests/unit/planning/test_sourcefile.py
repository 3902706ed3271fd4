"""Lifecycle files: located errors (path:line:col: key.path: message) and the presets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nudgeflow.errors import CampaignFileError
from planning.lifecycle_file import load_lifecycle

ROOT = Path(__file__).resolve().parents[3]
GOOD = (ROOT / "examples/lifecycles/retention-ladder.yaml").read_text()


def _problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "lifecycle.yaml").write_text(text)
    with pytest.raises(CampaignFileError) as caught:
        load_lifecycle(tmp_path)
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


@pytest.mark.parametrize("preset", sorted((ROOT / "examples/lifecycles").glob("*.yaml")))
def test_every_preset_loads(preset: Path, tmp_path: Path) -> None:
    shutil.copy(preset, tmp_path / "lifecycle.yaml")
    lifecycle = load_lifecycle(tmp_path)
    assert len(lifecycle.stages) >= 3
    assert lifecycle.rfm.window_days == 365


def test_shipped_lifecycle_is_the_retention_ladder() -> None:
    # Equal but for the first line: the editor's schema, relative to each file's folder.
    shipped = (ROOT / "campaigns/lifecycle.yaml").read_text().split("\n", 1)
    assert shipped[1] == GOOD.split("\n", 1)[1]
    assert load_lifecycle(ROOT / "campaigns").stage_ids == ("adopter", "loyalist", "advocate")


def test_every_problem_is_reported_with_its_line_and_key(tmp_path: Path) -> None:
    text = """\
stages:
  - id: adopter
    when: {events: {type: purchase, min: 1, within: 3x}}
  - id: loyalist
    when: {events: {type: purchase, mn: 3}}
scoring:
  points: {purchase: 10}
  expire_after: 180d
rfm:
  segments:
    champions: {r: [4, 6]}
"""
    assert _problems(tmp_path, text) == [
        "lifecycle.yaml:3:45: stages[0].when.events.within: "
        "expected a duration such as '14d' or '2w', got '3x'",
        "lifecycle.yaml:5:37: stages[1].when.events.mn: unknown key 'mn' (did you mean 'min'?)",
        "lifecycle.yaml:11:17: rfm.segments.champions.r: "
        "expected [low, high] with 1 ≤ low ≤ high ≤ 5, got [4, 6]",
    ]


def test_points_must_expire(tmp_path: Path) -> None:
    text = GOOD.replace("  expire_after: 180d\n", "")
    [problem] = _problems(tmp_path, text)
    assert problem.startswith("lifecycle.yaml:20:1: scoring: give exactly one of expire_after")


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    text = GOOD.replace("  expire_after: 180d\n", "  expire_after: 180d\n  expire_after: 90d\n")
    [problem] = _problems(tmp_path, text)
    assert problem.startswith("lifecycle.yaml:")
    assert "duplicate key" in problem
    assert "expire_after" in problem


def test_duplicate_stage_ids_are_errors(tmp_path: Path) -> None:
    text = GOOD.replace("- id: loyalist", "- id: adopter")
    [problem] = _problems(tmp_path, text)
    assert "stages: stage id 'adopter' is used twice" in problem


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    [problem] = _problems(tmp_path, "stages: [\n  - id: x\n")
    assert problem.startswith("lifecycle.yaml:")
    assert problem.split(":")[1].isdigit()


def test_missing_file(tmp_path: Path) -> None:
    [problem] = _problems_missing(tmp_path)
    assert problem.endswith("lifecycle.yaml:1:1: file not found")


def _problems_missing(tmp_path: Path) -> list[str]:
    with pytest.raises(CampaignFileError) as caught:
        load_lifecycle(tmp_path)
    return [str(p) for p in caught.value.problems]


def test_a_required_key_that_is_missing_points_at_its_parent(tmp_path: Path) -> None:
    text = "stages:\n  - id: adopter\nscoring:\n  points: {purchase: 1}\n  half_life: 90d\n"
    [problem] = _problems(tmp_path, text)
    assert problem == "lifecycle.yaml:2:5: stages[0].when: required key is missing"
