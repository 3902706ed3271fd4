"""The checks beyond parsing: templates against a sample member, unseen event types, and
the JSON Schema for editors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from delivery.validation import (
    ValidationReport,
    campaign_json_schema,
    campaign_schema_text,
    relative_paths,
    validate_campaigns,
)

ROOT = Path(__file__).resolve().parents[3]
SETS = [
    ROOT / "campaigns",
    *sorted((ROOT / "examples/campaign-sets").iterdir()),
]


def test_the_committed_schema_matches_the_generator() -> None:
    committed = (ROOT / "docs/schema/campaign.schema.json").read_text(encoding="utf-8")
    assert committed == campaign_schema_text(), "run: nudgeflow schema --out docs/schema/..."


def test_the_schema_uses_the_keys_users_write() -> None:
    schema = campaign_json_schema()
    defs = schema["$defs"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "not" in defs["AudienceSpec"]["properties"]
    assert "in" in defs["AttributeSpec"]["properties"]
    assert "for" in defs["TriggerSpec"]["properties"]
    assert "not_" not in defs["AudienceSpec"]["properties"]
    assert "not_" not in defs["RuleSpec"]["properties"]
    assert "in_" not in defs["AttributeSpec"]["properties"]
    assert "for_" not in json.dumps(defs["TriggerSpec"])
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"id", "name", "audience", "trigger", "email"}


@pytest.mark.parametrize("folder", SETS, ids=lambda p: p.name)
def test_every_shipped_set_is_clean(folder: Path) -> None:
    report = validate_campaigns(
        folder,
        ROOT / "templates/email",
        seen_event_types=None,
        as_of=date(2026, 2, 28),
    )
    assert [str(p) for p in report.problems] == []
    assert report.campaigns >= 6


def test_every_shipped_campaign_file_points_editors_at_the_schema() -> None:
    for folder in SETS:
        for path in folder.glob("*.yaml"):
            if path.name in ("lifecycle.yaml", "policy.yaml"):
                continue
            first = path.read_text(encoding="utf-8").splitlines()[0]
            prefix = "# yaml-language-server: $schema="
            assert first.startswith(prefix), path
            target = (path.parent / first.removeprefix(prefix)).resolve()
            assert target == ROOT / "docs/schema/campaign.schema.json", path


def test_unseen_event_types_warn_once_per_file_and_type() -> None:
    report = validate_campaigns(
        ROOT / "campaigns",
        ROOT / "templates/email",
        seen_event_types={"purchase", "email_clicked", "review_posted"},
        as_of=date(2026, 2, 28),
    )
    assert report.errors == 0
    warned = [(p.path.rsplit("/", 1)[-1], p.key) for p in report.problems]
    assert ("advocate-referral-bonus.yaml", "trigger.types[0]") in warned
    assert len(warned) == len(set(warned))
    assert all(p.severity == "warning" for p in report.problems)


def test_summary_counts_and_relative_paths(tmp_path: Path) -> None:
    from nudgeflow.errors import FileProblem

    problem = FileProblem(str(tmp_path / "campaigns/x.yaml"), 3, 5, "id", "bad")
    warning = FileProblem("/elsewhere/y.yaml", 1, 1, "", "hm", "warning")
    report = relative_paths(ValidationReport((problem, warning), 1, 2), tmp_path)
    assert [str(p) for p in report.problems] == [
        "campaigns/x.yaml:3:5: id: bad",
        "/elsewhere/y.yaml:1:1: warning: hm",
    ]
    assert report.summary() == "checked 1 campaign, 2 templates: 1 error, 1 warning"


def test_event_types_nudgeflow_records_itself_never_warn() -> None:
    # vip-inner-circle counts an accepted invite (recorded by the service's invite page) as
    # its response: no import carries that type, so the warning would always be wrong.
    report = validate_campaigns(
        ROOT / "campaigns",
        ROOT / "templates/email",
        seen_event_types={"purchase", "email_clicked", "reward_redeemed"},
        as_of=date(2026, 2, 28),
    )
    named = [p for p in report.problems if "vip_invite_accepted" in p.message]
    assert named == []
