"""Reading a campaigns folder reports every problem of every file at once: a broken
lifecycle still names its stages, an unknown stage is one problem however many campaigns
name it, and files with errors are still checked for duplicate ids and their templates."""

from __future__ import annotations

from pathlib import Path

from planning.campaign_files import read_campaign_files

ROOT = Path(__file__).resolve().parents[3]
LIFECYCLE = (ROOT / "examples/lifecycles/retention-ladder.yaml").read_text(encoding="utf-8")


def _campaign(id_: str, stage: str = "loyalist", **extra: str) -> str:
    keys = {
        "id": id_,
        "name": id_.title(),
        "audience": f"{{stage: {stage}}}",
        "trigger": "{on: stage_entry}",
        "email": '{template: thanks, subject: "Hi"}',
        **extra,
    }
    return "".join(f"{key}: {value}\n" for key, value in keys.items())


def _problems(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in {"lifecycle.yaml": LIFECYCLE, **files}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    found = read_campaign_files(tmp_path)
    prefix = str(tmp_path) + "/"
    return sorted(str(p).replace(prefix, "") for p in found.problems)


def test_a_stage_misspelt_in_the_lifecycle_is_one_problem(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        {
            "lifecycle.yaml": LIFECYCLE.replace("- id: loyalist", "- id: loyalst"),
            **{f"c{n}.yaml": _campaign(f"c{n}") for n in range(1, 6)},
        },
    )
    assert problems == [
        "c1.yaml:3:12: audience.stage: unknown stage 'loyalist' (did you mean 'loyalst'?); "
        "also named in 4 other places: c2.yaml:3:12, c3.yaml:3:12, c4.yaml:3:12 and 1 more"
    ]


def test_campaigns_are_checked_against_a_lifecycle_with_errors(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        {
            "lifecycle.yaml": LIFECYCLE.replace("expire_after: 180d", "expire_after: soon"),
            "a.yaml": _campaign("a", stage="advocat"),
            "b.yaml": _campaign("b", stage="[adopter, advocat]"),
        },
    )
    assert problems == [
        "a.yaml:3:12: audience.stage: unknown stage 'advocat' (did you mean 'advocate'?); "
        "also named in 1 other place: b.yaml:3:29",
        "lifecycle.yaml:23:3: scoring.expire_after: expected a duration such as '14d' or "
        "'2w', got 'soon'",
    ]


def test_broken_yaml_hides_nothing_in_other_files(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        {
            "lifecycle.yaml": "stages: [\n",
            "policy.yaml": "fatigue: {rest_for: 1 month}\n",
            "a.yaml": "id: a\nname: [unclosed\n",
            "b.yaml": _campaign("b", priority="2000"),
        },
    )
    assert [p.split(": ", 1)[0] for p in problems] == [
        "a.yaml:3:1",
        "b.yaml:6:1",
        "lifecycle.yaml:2:1",
        "policy.yaml:1:11",
    ]
    assert "b.yaml:6:1: priority: must be from 0 to 1000, got 2000" in problems


def test_duplicate_ids_are_found_in_files_with_errors(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        {"a.yaml": _campaign("same", priority="high"), "b.yaml": _campaign("same")},
    )
    assert problems == [
        "a.yaml:6:1: priority: expected a whole number, got 'high'",
        "b.yaml:1:1: id: campaign id 'same' is also used by a.yaml",
    ]


def test_files_with_errors_still_offer_their_email_for_template_checks(tmp_path: Path) -> None:
    for name, text in {
        "lifecycle.yaml": LIFECYCLE,
        "a.yaml": _campaign("a", priority="high", reward="{kind: credit, amount: lots}"),
        "b.yaml": _campaign("b", email="{template: Not An Id}"),
    }.items():
        (tmp_path / name).write_text(text, encoding="utf-8")

    found = read_campaign_files(tmp_path)

    assert found.campaigns == ()
    [(campaign, source)] = found.stand_ins
    assert (campaign.id, campaign.template, source.path) == (
        "a",
        "thanks",
        str(tmp_path / "a.yaml"),
    )
    assert campaign.reward is not None and campaign.reward.kind == "credit"
    assert [Path(d.path).name for d in found.documents] == ["a.yaml", "b.yaml"]


# --- categories -----------------------------------------------------------------------------

POLICY = "categories: [rewards, surveys, community]\n"


def test_a_campaign_names_a_category_of_the_policy(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        {
            "policy.yaml": POLICY,
            "a.yaml": _campaign("a", category="survey"),
            "b.yaml": _campaign("b", category="survey"),
            "c.yaml": _campaign("c", category="rewards"),
            "d.yaml": _campaign("d"),  # no category: fine
        },
    )
    assert problems == [
        "a.yaml:6:1: category: unknown category 'survey' (did you mean 'surveys'?); "
        "also named in 1 other place: b.yaml:6:1"
    ]
    found = read_campaign_files(tmp_path)
    assert found.policy is not None and found.policy.categories == (
        "rewards",
        "surveys",
        "community",
    )
    assert {c.id: c.category for c in found.campaigns} == {
        "a": "survey",
        "b": "survey",
        "c": "rewards",
        "d": None,
    }


def test_a_category_without_categories_in_the_policy(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"a.yaml": _campaign("a", category="rewards")})
    assert problems == [
        "a.yaml:6:1: category: unknown category 'rewards'; policy.yaml lists no categories "
        "(add them under categories:)"
    ]


def test_a_category_listed_twice_in_the_policy(tmp_path: Path) -> None:
    problems = _problems(tmp_path, {"policy.yaml": "categories: [rewards, surveys, rewards]\n"})
    assert problems == ["policy.yaml:1:1: categories: listed more than once: rewards"]
