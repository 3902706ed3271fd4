"""A campaign file's problems: all of them in one pass (field errors never hide rules across
keys), in plain words with "did you mean", and absurd values refused with their line."""

from __future__ import annotations

import pytest

from nudgeflow.errors import CampaignFileError
from planning.campaign_spec import CampaignSpec
from planning.policy_spec import PolicySpec
from planning.sourcefile import parse_yaml, validate_source

BASE = {
    "id": "thanks",
    "name": "Thanks",
    "audience": "{stage: loyalist}",
    "trigger": "{on: stage_entry}",
    "email": '{template: thanks, subject: "Hi"}',
}


def _problems(**keys: str) -> list[str]:
    """Every problem of a campaign made of BASE and ``keys`` (a value of "" drops a key)."""
    lines = {**BASE, **keys}
    text = "".join(f"{key}: {value}\n" for key, value in lines.items() if value != "")
    with pytest.raises(CampaignFileError) as caught:
        validate_source(parse_yaml(text, "c.yaml"), CampaignSpec)
    return [str(p) for p in caught.value.problems]


# --- one pass ------------------------------------------------------------------------------


def test_rules_across_sections_are_reported_with_field_errors() -> None:
    # Before, any bad key of a campaign hid the rules across its sections: three rounds.
    problems = _problems(
        audience="{tags: {none_of: [staff]}}",
        priority="high",
        trigger="{on: schedule}",
        budget='{total: "100.00 USD"}',
    )
    assert problems == [
        "c.yaml:1:1: a schedule campaign needs eligibility.once_per_member or "
        "eligibility.cooldown, or it would nudge the same members every night",
        "c.yaml:6:1: priority: expected a whole number, got 'high'",
        "c.yaml:7:1: budget: a budget needs a reward to spend it on",
    ]


def test_reward_keys_that_do_not_fit_are_reported_with_a_bad_amount() -> None:
    problems = _problems(
        reward="{kind: discount, amount_off: '5,00 USD', item: a card, programme: x}"
    )
    assert problems == [
        "c.yaml:6:26: reward.amount_off: expected an amount and a currency such as "
        "'10.00 USD', got '5,00 USD'",
        "c.yaml:6:50: reward.item: item does not apply to a discount reward "
        "(amount_off, cost_estimate, expires_in, percent_off)",
        "c.yaml:6:64: reward.programme: programme does not apply to a discount reward "
        "(amount_off, cost_estimate, expires_in, percent_off)",
    ]


def test_trigger_keys_that_do_not_fit_are_reported_with_a_bad_duration() -> None:
    problems = _problems(trigger="{on: birthday, for: soon, years: 3}")
    assert problems == [
        "c.yaml:4:25: trigger.for: expected a duration such as '14d' or '2w', got 'soon'",
        "c.yaml:4:25: trigger.for: for does not apply to 'on: birthday'",
        "c.yaml:4:36: trigger.years: years does not apply to 'on: birthday'",
    ]


def test_a_misspelt_key_is_not_also_reported_as_missing() -> None:
    problems = _problems(audience="{stage: loyalist, events: {type: purchase, mn: 3}}")
    assert problems == [
        "c.yaml:3:54: audience.events.mn: unknown key 'mn' (did you mean 'min'?)",
    ]


# --- plain words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"priority": "5000"}, "priority: must be from 0 to 1000, got 5000"),
        ({"priority": "99999999999999999999999"}, "priority: must be from 0 to 1000, got 9999"),
        ({"priority": "1.5"}, "priority: expected a whole number, got 1.5"),
        ({"enabled": "sometimes"}, "enabled: expected true or false, got 'sometimes'"),
        ({"id": "Loyal Discount"}, "id: expected an id of lower-case letters, digits"),
        ({"name": "''"}, "name: must not be empty"),
        ({"trigger": "{on: evnt}"}, "trigger.on: expected 'schedule', 'stage_entry', 'event', "),
        ({"trigger": "{on: evnt}"}, ", got 'evnt' (did you mean 'event'?)"),
        ({"eligibility": "{holdut: 10}"}, "unknown key 'holdut' (did you mean 'holdout'?)"),
        ({"eligibility": "{zzz: 1}"}, "unknown key 'zzz'; expected one of once_per_member, "),
        ({"audience": "loyalist"}, "audience: expected a mapping of keys to values, got "),
        ({"email": "{template: thanks}"}, "email.subject: required key is missing"),
        ({"response": "{counts_as: [], within: 7d}"}, "counts_as: needs at least 1 entry"),
    ],
)
def test_messages_are_plain_words(keys: dict[str, str], expected: str) -> None:
    problems = _problems(**keys)
    assert any(expected in p for p in problems), problems
    assert not any("Input should" in p or "validation" in p for p in problems), problems


# --- absurd values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "key", "expected"),
    [
        ({"reward": "{kind: credit, amount: '0.00 USD'}"}, "reward.amount", "more than zero"),
        ({"reward": "{kind: credit, amount: '-5.00 USD'}"}, "reward.amount", "more than zero"),
        (
            {"reward": "{kind: discount, percent_off: 5, cost_estimate: '-1.00 USD'}"},
            "reward.cost_estimate",
            "must be more than zero, got '-1.00 USD'",
        ),
        (
            {"reward": "{kind: gift, item: a card, item_cost: '0 USD'}"},
            "reward.item_cost",
            "more than zero",
        ),
        (
            {"reward": "{kind: vip_invite, programme: x, programme_cost: '0.00 USD'}"},
            "reward.programme_cost",
            "more than zero",
        ),
        (
            {"reward": "{kind: credit, amount: '5.00 USD'}", "budget": "{total: '0.00 USD'}"},
            "budget.total",
            "must be more than zero, got '0.00 USD'",
        ),
        (
            {"reward": "{kind: credit, amount: '5 USD'}", "budget": "{per_month: '-1 USD'}"},
            "budget.per_month",
            "more than zero",
        ),
        (
            {"reward": "{kind: credit, amount: '100000000000.00 USD'}"},
            "reward.amount",
            "an amount may be at most 10000000000.00 USD",
        ),
        (
            {"audience": "{stage: loyalist, spend: {min: '-10.00 USD'}}"},
            "audience.spend.min",
            "must not be negative",
        ),
        (
            {"audience": "{stage: loyalist, entered_stage: {within: 999999999d}}"},
            "audience.entered_stage.within",
            "a duration may be at most 36525d (100 years), got '999999999d'",
        ),
        (
            {"reward": "{kind: credit, amount: '5.00 USD', expires_in: 99999999999999999999w}"},
            "reward.expires_in",
            "a duration may be at most 36525d (100 years)",
        ),
        (
            {"eligibility": "{once_per_member: true, max_per_run: 10000000000}"},
            "eligibility.max_per_run",
            "must be from 1 to 1000000, got 10000000000",
        ),
        (
            {"audience": "{stage: loyalist, events: {type: purchase, min: 10000000000}}"},
            "audience.events.min",
            "must be from 0 to 1000000",
        ),
        (
            {"audience": "{stage: loyalist, score: {min: .inf}}"},
            "audience.score.min",
            "expected a finite number, got inf",
        ),
        (
            {"reward": "{kind: discount, percent_off: .nan}"},
            "reward.percent_off",
            "expected a finite number, got nan",
        ),
    ],
)
def test_absurd_values_are_errors_at_their_line(
    keys: dict[str, str], key: str, expected: str
) -> None:
    problems = _problems(**keys)
    located = [p for p in problems if f": {key}: " in p]
    assert located and expected in located[0], problems


def test_policy_values_are_checked_too() -> None:
    text = "frequency_caps:\n  - {max: 0, per: 99999d}\nfatigue: {rest_for: 0d}\n"
    with pytest.raises(CampaignFileError) as caught:
        validate_source(parse_yaml(text, "policy.yaml"), PolicySpec)
    assert [str(p) for p in caught.value.problems] == [
        "policy.yaml:2:6: frequency_caps[0].max: must be from 1 to 1000000, got 0",
        "policy.yaml:2:14: frequency_caps[0].per: a duration may be at most 36525d (100 years), "
        "got '99999d'",
        "policy.yaml:3:11: fatigue.rest_for: a duration must be at least one day, got '0d'",
    ]


def test_a_number_too_long_to_print_is_described_not_printed() -> None:
    problems = _problems(priority="0x" + "f" * 5000)
    assert problems == [
        "c.yaml:6:1: priority: must be from 0 to 1000, got a number of thousands of digits"
    ]


# --- seasons and referral campaigns -------------------------------------------------------


def test_a_season_that_ends_before_it_starts_is_refused_on_its_line() -> None:
    problems = _problems(starts_on="2026-12-24", ends_on="2026-12-01")
    assert problems == [
        "c.yaml:7:1: ends_on: ends_on (2026-12-01) is before starts_on (2026-12-24)"
    ]


def test_a_season_date_must_be_a_date() -> None:
    problems = _problems(starts_on="next monday")
    assert problems == [
        "c.yaml:6:1: starts_on: expected a date such as 2026-12-01, got 'next monday'"
    ]
    # An impossible date is already refused where the YAML is read.
    problems = _problems(ends_on="2026-02-30")
    assert problems == ["c.yaml:6:10: '2026-02-30' cannot be read: day is out of range for month"]


def test_a_one_day_season_is_valid() -> None:
    text = "".join(f"{k}: {v}\n" for k, v in BASE.items())
    text += "starts_on: 2026-11-27\nends_on: 2026-11-27\n"
    spec = validate_source(parse_yaml(text, "c.yaml"), CampaignSpec)
    assert spec.starts_on == spec.ends_on


def test_referral_limits_need_a_referral_trigger() -> None:
    problems = _problems(referral="{max_rewarded: {max: 5, per: 30d}}")
    assert problems == [
        "c.yaml:6:1: referral: referral applies only to a campaign triggered by referral_converted"
    ]


def test_a_referral_campaign_fires_on_conversions_alone() -> None:
    problems = _problems(
        audience="{stage: advocate}",
        trigger="{on: event, types: [referral_converted, purchase]}",
        referral="{max_rewarded: {max: 0, per: 30d}}",
    )
    assert problems == [
        "c.yaml:4:1: trigger: a referral campaign fires on referral_converted alone "
        "(give the other event types their own campaign)",
        "c.yaml:6:27: referral.max_rewarded.max: must be from 1 to 1000000, got 0",
    ]


def test_public_email_domains_must_be_domains() -> None:
    text = "referrals: {public_email_domains: [gmail.com, 'not a domain']}\n"
    with pytest.raises(CampaignFileError) as caught:
        validate_source(parse_yaml(text, "policy.yaml"), PolicySpec)
    assert [str(p) for p in caught.value.problems] == [
        "policy.yaml:1:13: referrals.public_email_domains: expected a domain such as "
        "gmail.com, got 'not a domain'"
    ]
