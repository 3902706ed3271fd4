"""A/B/n variants: the file's rules (with file:line:col), the compiled values, and the
planner's assignment: reproducible, in the weights' proportions, never to held-out members."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

import pytest

from domain.campaign import Policy, Variant
from domain.plan import MemberState, NightInput
from nudgeflow.errors import CampaignFileError
from planning.campaign_spec import CampaignSpec
from planning.compile import compile_campaign
from planning.planner import FixedBudgets, plan_night, variant_for
from planning.sourcefile import parse_yaml, validate_source
from tests.campaigns import make_campaign

TEXT = """\
id: ab
name: AB
audience: {stage: loyalist}
trigger: {on: stage_entry}
email: {template: thanks, subject: "Hi"}
"""
NO_CAPS = Policy((), 3, "nudge-fatigued", 90, "09:00", "18:00", "member")


def _problems(variants: str) -> list[str]:
    with pytest.raises(CampaignFileError) as caught:
        validate_source(parse_yaml(TEXT + variants, "ab.yaml"), CampaignSpec)
    return [str(p) for p in caught.value.problems]


def test_variant_rules_are_reported_with_their_place() -> None:
    problems = _problems(
        "variants:\n"
        "  - {id: a, weight: 0}\n"
        "  - {id: a, subject: ''}\n"
        "  - {id: Bad Id, template: thanks}\n"
    )
    assert problems == [
        "ab.yaml:7:13: variants[0].weight: must be from 0 to 1000, got 0",
        "ab.yaml:8:13: variants[1].subject: must not be empty",
        "ab.yaml:9:6: variants[2].id: expected an id of lower-case letters, digits, '-' and "
        "'_', starting with a letter, got 'Bad Id'",
    ]
    assert _problems("variants: [{id: a}, {id: a}]\n") == [
        "ab.yaml:6:1: variants: variant ids must be unique: a given twice"
    ]
    assert _problems("variants: [{id: only}]\n") == [
        "ab.yaml:6:1: variants: needs at least 2 entries"
    ]


def test_variants_compile_with_the_campaign_email_as_default() -> None:
    spec = validate_source(
        parse_yaml(
            TEXT + "variants: [{id: plain}, {id: bold, subject: 'Now!', weight: 3}]\n", "ab.yaml"
        ),
        CampaignSpec,
    )
    campaign = compile_campaign(spec, "ab.yaml")
    assert campaign.variants == (
        Variant("plain", "thanks", "Hi", 1.0),
        Variant("bold", "thanks", "Now!", 3.0),
    )
    assert campaign.variant("bold") == campaign.variants[1]
    assert campaign.variant("gone") is None and campaign.variant(None) is None


AB = replace(
    make_campaign("ab", name="AB", template="base", subject="Hi"),
    variants=(Variant("plain", "base", "Hi", 1.0), Variant("bold", "bold_email", "Now!", 3.0)),
    holdout_percent=20,
    holdout_salt="s1",
)


def test_assignment_is_reproducible_salted_and_weighted() -> None:
    ids = [f"m{i}" for i in range(8000)]
    first = [variant_for(AB, m) for m in ids]
    assert first == [variant_for(AB, m) for m in ids]
    other_salt = replace(AB, holdout_salt="s2")
    assert first != [variant_for(other_salt, m) for m in ids]
    shares = Counter(v.id for v in first if v is not None)
    assert shares["bold"] / len(ids) == pytest.approx(0.75, abs=0.02)
    assert variant_for(replace(AB, variants=()), "m1") is None


def test_the_planner_records_variants_and_held_out_members_get_none() -> None:
    members = {pk: MemberState(f"m{pk:04d}", True, False) for pk in range(1, 2001)}
    as_of = date(2026, 3, 10)
    night = NightInput(as_of, [AB], members, {"ab": list(members)}, {})
    (plan,) = plan_night(night, NO_CAPS, FixedBudgets()).campaigns
    held = [a for a in plan.actions if a.holdout]
    sent = [a for a in plan.actions if not a.holdout]
    assert held and all(a.variant is None and a.template == "base" for a in held)
    assert {a.variant for a in sent} == {"plain", "bold"}
    for a in sent:
        expected = variant_for(AB, a.member_id)
        assert expected is not None
        assert (a.variant, a.template) == (expected.id, expected.template)
    # Another night (or a past one) draws the same variants.
    later = NightInput(as_of + timedelta(days=40), [AB], members, {"ab": list(members)}, {})
    (again,) = plan_night(later, NO_CAPS, FixedBudgets()).campaigns
    assert {a.member_id: a.variant for a in again.actions} == {
        a.member_id: a.variant for a in plan.actions
    }
