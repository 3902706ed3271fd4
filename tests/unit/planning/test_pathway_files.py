"""Pathway files: parsed, validated with every problem at its line and column, compiled, and
the campaigns' ``audience.pathway`` references checked against them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from planning.campaign_files import load_campaign_set, read_campaign_files

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
id: climb
name: Climb
start: {events: {type: purchase, min: 3}}
key_actions:
  - {id: answered, events: {type: answer_posted}}
  - {id: posted, events: {type: guest_post, min: 2}}
end: {stage: advocate}
target_impact: Advocates
"""

NEXT_STEP = """\
id: next-step
name: Next step
audience:
  pathway: {id: climb, done: answered, not_done: [posted]}
trigger: {on: schedule}
eligibility: {once_per_member: true}
email: {template: loyalist_discount, subject: Hi}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    campaigns = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", campaigns)
    shutil.rmtree(campaigns / "pathways")
    (campaigns / "pathways").mkdir()
    return campaigns


def _problems(folder: Path) -> list[str]:
    found = read_campaign_files(folder)
    return [
        f"{Path(p.path).relative_to(folder)}:{p.line}:{p.column}: {p.key}: {p.message}"
        for p in found.problems
    ]


def test_the_shipped_pathway_compiles() -> None:
    [pathway] = load_campaign_set(ROOT / "campaigns").pathways
    assert pathway.id == "retention-to-advocacy"
    assert pathway.start.stages == ("loyalist", "advocate")  # the stage or above
    assert pathway.key_action_ids == ("answered", "guest-post", "reviewed")
    assert pathway.end.types == ("answer_posted", "guest_post", "review_posted", "referral_made")
    assert pathway.end.min == 3
    assert [i.kind for i in pathway.indicators] == ["events", "events", "retention"]


def test_a_campaign_targets_a_position(folder: Path) -> None:
    (folder / "pathways" / "climb.yaml").write_text(GOOD)
    (folder / "next-step.yaml").write_text(NEXT_STEP)
    campaigns = load_campaign_set(folder)
    [nudge] = [c for c in campaigns.campaigns if c.id == "next-step"]
    target = nudge.audience.pathway
    assert target is not None and target.pathway is not None
    assert (target.pathway_id, target.done, target.not_done) == (
        "climb",
        ("answered",),
        ("posted",),
    )
    assert target.pathway.end.stages == ("advocate",)
    assert target.pathway.start.min == 3


def test_every_problem_of_a_pathway_file_is_located(folder: Path) -> None:
    (folder / "pathways" / "bad.yaml").write_text(
        "id: bad\n"
        "name: Bad\n"
        "start: {stage: loyalist, events: {type: x}}\n"
        "key_actions:\n"
        "  - {id: a, events: {type: x, min: 0}}\n"
        "  - {id: a, stage: advocat}\n"
        "end: {}\n"
        "target_impact: more\n"
        "indicators:\n"
        "  - {id: i, retention: {}}\n"
        "colour: blue\n"
    )
    assert sorted(_problems(folder), key=lambda p: int(p.split(":")[1])) == [
        "pathways/bad.yaml:3:1: start: give exactly one of stage (e.g. stage: loyalist) or events",
        "pathways/bad.yaml:5:31: key_actions[0].events.min: must be from 1 to 1000, got 0",
        "pathways/bad.yaml:6:13: key_actions[1].stage: unknown stage 'advocat' "
        "(did you mean 'advocate'?)",
        "pathways/bad.yaml:7:1: end: give exactly one of stage (e.g. stage: loyalist) or events",
        "pathways/bad.yaml:10:13: indicators[0].retention.within: required key is missing",
        "pathways/bad.yaml:11:1: colour: unknown key 'colour'; expected one of id, name, "
        "description, start, key_actions, end, target_impact, indicators",
    ]


def test_key_action_ids_are_unique(folder: Path) -> None:
    text = GOOD.replace("id: posted", "id: answered")
    (folder / "pathways" / "climb.yaml").write_text(text)
    [problem] = _problems(folder)
    assert problem.startswith("pathways/climb.yaml:4:1: key_actions:")
    assert "key action id 'answered' is used twice" in problem


def test_pathway_ids_are_unique_across_files(folder: Path) -> None:
    (folder / "pathways" / "a.yaml").write_text(GOOD)
    (folder / "pathways" / "b.yaml").write_text(GOOD)
    [problem] = _problems(folder)
    assert problem.startswith("pathways/b.yaml:1:1: id: pathway id 'climb' is also used by")


def test_campaigns_name_known_pathways_and_key_actions(folder: Path) -> None:
    (folder / "pathways" / "climb.yaml").write_text(GOOD)
    (folder / "next-step.yaml").write_text(NEXT_STEP.replace("done: answered", "done: answerd"))
    (folder / "elsewhere.yaml").write_text(
        NEXT_STEP.replace("id: next-step", "id: elsewhere").replace("{id: climb", "{id: clmb")
    )
    assert _problems(folder) == [
        "elsewhere.yaml:4:13: audience.pathway.id: unknown pathway 'clmb' (did you mean "
        "'climb'?) in pathways/",
        "next-step.yaml:4:24: audience.pathway.done: pathway 'climb' has no key action "
        "'answerd' (did you mean 'answered'?)",
    ]


def test_done_and_not_done_may_not_share_a_key_action(folder: Path) -> None:
    (folder / "pathways" / "climb.yaml").write_text(GOOD)
    (folder / "next-step.yaml").write_text(NEXT_STEP.replace("[posted]", "[answered]"))
    [problem] = _problems(folder)
    assert problem.startswith("next-step.yaml:4:3: audience.pathway:")
    assert "key action 'answered' is in both done and not_done" in problem


def test_a_folder_without_pathways_has_none(folder: Path) -> None:
    shutil.rmtree(folder / "pathways")
    assert load_campaign_set(folder).pathways == ()
