"""``approval_above`` and ``approval_expires_after``: validated like the other money and
duration keys (with their line), a campaign's threshold replaces the policy's, and a
threshold in another currency than the reward it applies to is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from domain.campaign import Campaign
from nudgeflow.errors import CampaignFileError
from nudgeflow.money import Money
from planning.campaign_files import load_campaign_set, read_campaign_files
from planning.campaign_spec import CampaignSpec
from planning.policy_spec import PolicySpec
from planning.sourcefile import parse_yaml, validate_source

ROOT = Path(__file__).resolve().parents[3]
LIFECYCLE = (ROOT / "campaigns/lifecycle.yaml").read_text(encoding="utf-8")
CAMPAIGN = """\
id: {id}
name: Big credit
audience: {{stage: loyalist}}
trigger: {{on: stage_entry}}
reward: {{kind: credit, amount: "{amount}", expires_in: 30d}}
email: {{template: thanks, subject: "Hi"}}
"""


def _problems(text: str, spec: type[CampaignSpec] | type[PolicySpec]) -> list[str]:
    with pytest.raises(CampaignFileError) as caught:
        validate_source(parse_yaml(text, "f.yaml"), spec)
    return [str(p) for p in caught.value.problems]


def test_a_bad_threshold_in_the_policy_is_reported_with_its_line() -> None:
    problems = _problems(
        'categories: [rewards]\napproval_above: "50,00 USD"\napproval_expires_after: soon\n',
        PolicySpec,
    )
    assert problems == [
        "f.yaml:2:1: approval_above: expected an amount and a currency such as '10.00 USD', "
        "got '50,00 USD'",
        "f.yaml:3:1: approval_expires_after: expected a duration such as '14d' or '2w', got 'soon'",
    ]
    assert _problems('approval_above: "-1.00 USD"\n', PolicySpec) == [
        "f.yaml:1:1: approval_above: must not be negative, got '-1.00 USD'"
    ]


def test_the_policy_defaults_to_no_approvals_and_seven_days() -> None:
    spec = validate_source(parse_yaml("{}\n", "f.yaml"), PolicySpec)
    assert spec.approval_above is None and spec.approval_expires_after == 7


def test_a_campaign_threshold_needs_a_reward_in_its_currency() -> None:
    text = CAMPAIGN.format(id="big", amount="75.00 EUR") + 'approval_above: "50.00 USD"\n'
    assert _problems(text, CampaignSpec) == [
        "f.yaml:7:1: approval_above: approval_above is in USD but the reward costs EUR"
    ]
    bare = text.replace('reward: {kind: credit, amount: "75.00 EUR", expires_in: 30d}\n', "")
    assert _problems(bare, CampaignSpec) == [
        "f.yaml:6:1: approval_above: approval_above needs a reward to approve"
    ]


def _folder(tmp_path: Path, policy: str, **campaigns: str) -> Path:
    (tmp_path / "lifecycle.yaml").write_text(LIFECYCLE, encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(policy, encoding="utf-8")
    for name, text in campaigns.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_campaign_threshold_replaces_the_policys(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        'approval_above: "50.00 USD"\napproval_expires_after: 2w\n',
        big=CAMPAIGN.format(id="big", amount="75.00 USD"),
        trusted=CAMPAIGN.format(id="trusted", amount="75.00 USD")
        + 'approval_above: "100.00 USD"\n',
        plain="id: plain\nname: Plain\naudience: {stage: loyalist}\n"
        'trigger: {on: stage_entry}\nemail: {template: thanks, subject: "Hi"}\n',
    )
    campaign_set = load_campaign_set(folder)
    by_id = {c.id: c for c in campaign_set.campaigns}
    assert by_id["big"].approval_above == Money.parse("50.00 USD")
    assert by_id["trusted"].approval_above == Money.parse("100.00 USD")
    assert by_id["plain"].approval_above is None
    assert campaign_set.policy.approval_expires_days == 14
    assert by_id["big"].needs_approval(Money.parse("75.00 USD"))
    assert not by_id["trusted"].needs_approval(Money.parse("75.00 USD"))


def test_a_reward_in_another_currency_than_the_policys_threshold(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path,
        'approval_above: "50.00 USD"\n',
        euro=CAMPAIGN.format(id="euro", amount="75.00 EUR"),
        own=CAMPAIGN.format(id="own", amount="75.00 EUR") + 'approval_above: "60.00 EUR"\n',
    )
    found = read_campaign_files(folder)
    assert [str(p).replace(f"{folder}/", "") for p in found.problems] == [
        "euro.yaml:5:1: reward: the reward costs EUR but policy.yaml's approval_above is "
        "50.00 USD: give this campaign its own approval_above in EUR"
    ]


@pytest.mark.parametrize(
    ("threshold", "cost", "waits"),
    [
        ("50.00 USD", "50.00 USD", False),  # above means more than
        ("50.00 USD", "50.01 USD", True),
        ("0.00 USD", "0.01 USD", True),
        ("50.00 USD", "10.00 EUR", True),  # cannot be compared: a person decides
        (None, "9999.00 USD", False),
    ],
)
def test_needs_approval(threshold: str | None, cost: str, waits: bool) -> None:
    campaign = load_campaign_set(ROOT / "campaigns").campaigns[0]
    limit = Money.parse(threshold) if threshold else None
    assert isinstance(campaign, Campaign)
    assert replace(campaign, approval_above=limit).needs_approval(Money.parse(cost)) is waits
