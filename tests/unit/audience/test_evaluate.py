"""The pure rule evaluator: every node, the window and tenure edges, and the reasons."""

from __future__ import annotations

import pytest

from audience.evaluate import describe, evaluate, explain
from audience.facts import EventFact, MemberFacts
from audience.rules import (
    ALWAYS,
    AllOf,
    AnyOf,
    Attribute,
    EventCount,
    Not,
    Rule,
    Spend,
    Tags,
    Tenure,
)

END = 1_720_000_000  # as_of_end
DAY = 86_400


def member(
    *events: EventFact,
    joined_at: int | None = None,
    fields: dict[str, str] | None = None,
    tags: frozenset[str] = frozenset(),
) -> MemberFacts:
    return MemberFacts(joined_at, fields or {}, tags, events)


def purchase(at: int, amount: int | None = 1000, currency: str | None = "USD") -> EventFact:
    return EventFact("purchase", at, amount, currency)


# --- events ----------------------------------------------------------------------------


def test_event_at_the_lower_bound_of_the_window_counts() -> None:
    rule = EventCount(("purchase",), min=1, within_days=7)
    assert evaluate(rule, member(purchase(END - 7 * DAY)), END)
    assert not evaluate(rule, member(purchase(END - 7 * DAY - 1)), END)


def test_event_at_or_after_as_of_end_never_counts() -> None:
    ever = EventCount(("purchase",), min=1)
    assert evaluate(ever, member(purchase(END - 1)), END)
    assert not evaluate(ever, member(purchase(END)), END)
    assert not evaluate(ever, member(purchase(END + DAY)), END)
    assert not evaluate(EventCount(("purchase",), min=1, within_days=7), member(purchase(END)), END)


def test_zero_day_window_is_empty() -> None:
    assert not evaluate(
        EventCount(("purchase",), min=1, within_days=0), member(purchase(END - 1)), END
    )


def test_event_count_bounds_and_types() -> None:
    events = (purchase(END - 10), EventFact("review_posted", END - 20), EventFact("login", END - 5))
    m = member(*events)
    assert evaluate(EventCount(("purchase", "review_posted"), min=2, max=2), m, END)
    assert not evaluate(EventCount(("purchase", "review_posted"), min=3), m, END)
    assert not evaluate(EventCount(("purchase", "review_posted"), max=1), m, END)
    assert evaluate(EventCount(("other",), max=0), m, END)
    assert evaluate(EventCount(("purchase",), min=0), member(), END)


# --- spend -----------------------------------------------------------------------------


def test_spend_sums_purchases_in_the_currency_only() -> None:
    m = member(
        purchase(END - 10, 1000),
        purchase(END - 20, 500),
        purchase(END - 30, 9999, "EUR"),
        purchase(END - 40, None),
        EventFact("refund_like", END - 50, 7777, "USD"),
        purchase(END, 100_000),  # at as_of_end: too late
    )
    assert evaluate(Spend("USD", min_minor=1500, max_minor=1500), m, END)
    assert not evaluate(Spend("USD", min_minor=1501), m, END)
    assert evaluate(Spend("EUR", min_minor=9999), m, END)


def test_spend_is_zero_without_purchases_and_honours_the_window() -> None:
    assert evaluate(Spend("USD", max_minor=0), member(), END)
    assert not evaluate(Spend("USD", min_minor=1), member(purchase(END - 40, None)), END)
    m = member(purchase(END - 2 * DAY, 700), purchase(END - 2 * DAY - 1, 300))
    assert evaluate(Spend("USD", min_minor=700, max_minor=700, within_days=2), m, END)


# --- tenure ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("joined_at", "holds"),
    [(END - 30 * DAY, True), (END - 30 * DAY + 1, False), (END - 40 * DAY, True)],
)
def test_tenure_min_edge(joined_at: int, holds: bool) -> None:
    assert evaluate(Tenure(min_days=30), member(joined_at=joined_at), END) is holds


@pytest.mark.parametrize(
    ("joined_at", "holds"),
    [(END - 31 * DAY + 1, True), (END - 31 * DAY, False), (END - 1, True), (END + DAY, True)],
)
def test_tenure_max_edge(joined_at: int, holds: bool) -> None:
    # 30 whole days and 86399 seconds is still "30 days"; 31 days is one too many.
    assert evaluate(Tenure(max_days=30), member(joined_at=joined_at), END) is holds


def test_tenure_is_false_when_joined_at_is_unknown() -> None:
    assert not evaluate(Tenure(min_days=0), member(), END)
    assert not evaluate(Tenure(max_days=10_000), member(), END)
    assert explain(Tenure(min_days=1), member(), END) == "join date is unknown"


# --- attributes and tags ---------------------------------------------------------------


def test_attribute_tests_and_missing_values() -> None:
    us = member(fields={"country": "US", "plan": ""})
    nobody = member()
    assert evaluate(Attribute("country", "in", ("US", "CA")), us, END)
    assert not evaluate(Attribute("country", "in", ("us",)), us, END)  # compared as text
    assert not evaluate(Attribute("country", "in", ("US",)), nobody, END)
    assert evaluate(Attribute("country", "not_in", ("US",)), nobody, END)
    assert not evaluate(Attribute("country", "not_in", ("US",)), us, END)
    assert evaluate(Attribute("plan", "exists"), us, END)  # an empty string is present
    assert not evaluate(Attribute("plan", "missing"), us, END)
    assert evaluate(Attribute("plan", "missing"), nobody, END)
    assert not evaluate(Attribute("country", "in", ()), us, END)
    assert evaluate(Attribute("country", "not_in", ()), us, END)


def test_tags() -> None:
    m = member(tags=frozenset({"vip", "beta"}))
    assert evaluate(Tags(all_of=("vip", "beta")), m, END)
    assert not evaluate(Tags(all_of=("vip", "gold")), m, END)
    assert evaluate(Tags(any_of=("gold", "beta")), m, END)
    assert not evaluate(Tags(any_of=("gold",)), m, END)
    assert evaluate(Tags(any_of=()), m, END)  # no any_of: no constraint
    assert not evaluate(Tags(none_of=("beta",)), m, END)
    assert evaluate(Tags(none_of=("gold",)), member(), END)
    assert evaluate(Tags(), member(), END)


# --- combinators -----------------------------------------------------------------------


def test_combinators() -> None:
    yes, no = ALWAYS, AnyOf(())
    m = member()
    assert evaluate(AllOf(()), m, END)
    assert not evaluate(AnyOf(()), m, END)
    assert not evaluate(AllOf((yes, no)), m, END)
    assert evaluate(AnyOf((no, yes)), m, END)
    assert evaluate(Not(no), m, END)
    assert not evaluate(Not(Not(no)), m, END)


# --- reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (
            EventCount(("purchase",), min=3, within_days=365),
            "has 1 purchase event in the last 365 days; needs at least 3",
        ),
        (
            EventCount(("purchase", "login"), max=0),
            "has 1 purchase or login event; needs at most 0",
        ),
        (Spend("USD", min_minor=5000), "spent 10.00 USD; needs at least 50.00 USD"),
        (Tenure(max_days=5), "member for 10 days; needs at most 5"),
        (Attribute("country", "in", ("US", "CA")), "country is 'FR'; needs one of US, CA"),
        (Attribute("plan", "in", ("pro",)), "plan is missing; needs one of pro"),
        (Attribute("country", "not_in", ("FR",)), "country is 'FR'; must not be one of FR"),
        (Attribute("plan", "exists"), "plan is missing; needs it present"),
        (Attribute("country", "missing"), "country is 'FR'; needs it missing"),
        (Tags(all_of=("vip", "gold")), "lacks tag 'gold'"),
        (Tags(any_of=("a", "b")), "has none of the tags a, b"),
        (Tags(none_of=("x", "vip")), "has tag 'vip'"),
        (AllOf((ALWAYS, Tags(all_of=("gold",)))), "lacks tag 'gold'"),
        (AnyOf(()), "an empty any_of never holds"),
        (
            AnyOf((Tags(all_of=("gold",)), Tenure(min_days=11))),
            "none of these holds: lacks tag 'gold'; member for 10 days; needs at least 11",
        ),
        (Not(Tags(all_of=("vip",))), "must not hold: has all tags vip"),
    ],
)
def test_explain_names_the_first_failing_part(rule: Rule, reason: str) -> None:
    m = member(
        purchase(END - DAY),
        joined_at=END - 10 * DAY,
        fields={"country": "FR"},
        tags=frozenset({"vip"}),
    )
    assert not evaluate(rule, m, END)
    assert explain(rule, m, END) == reason


def test_explain_is_none_when_the_rule_holds() -> None:
    assert explain(EventCount(("purchase",), min=1), member(purchase(END - 1)), END) is None
    assert explain(ALWAYS, member(), END) is None


def test_describe_reads_as_english() -> None:
    rule = AllOf(
        (
            EventCount(("purchase",), min=3, max=5, within_days=1),
            Spend("USD", min_minor=50_000, within_days=365),
            Not(Attribute("country", "in", ("US",))),
            AnyOf((Tenure(min_days=30), Tags(none_of=("fatigued",)))),
        )
    )
    assert describe(rule) == (
        "all of (between 3 and 5 purchase events in the last 1 day; "
        "spent at least 500.00 USD in the last 365 days; not (country in US); "
        "any of (member for at least 30 days; has no tag of fatigued))"
    )
