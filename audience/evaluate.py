"""The pure evaluator of the rule language (``audience.rules``), with plain-English reasons.

``evaluate`` must give exactly the answers of ``store.rulesql``; the property test
``tests/integration/store/test_rules_agree.py`` holds the two together, so a change to the
semantics here needs the same change there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from audience.facts import MemberFacts
from audience.rules import (
    PURCHASE,
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
from nudgeflow.money import Money
from nudgeflow.timeutil import SECONDS_PER_DAY


def evaluate(rule: Rule, member: MemberFacts, as_of_end: int) -> bool:
    """Whether ``rule`` holds for ``member`` at the instant ``as_of_end`` (epoch seconds)."""
    match rule:
        case EventCount(min=low, max=high):
            return _between(_event_count(rule, member, as_of_end), low, high)
        case Spend(min_minor=low, max_minor=high):
            return _between(_spend(rule, member, as_of_end), low, high)
        case Tenure():
            return _tenure_holds(rule, member.joined_at, as_of_end)
        case Attribute():
            return _attribute_holds(rule, member.fields.get(rule.name))
        case Tags(all_of=all_of, any_of=any_of, none_of=none_of):
            tags = member.tags
            return (
                all(t in tags for t in all_of)
                and (not any_of or any(t in tags for t in any_of))
                and not any(t in tags for t in none_of)
            )
        case AllOf(rules=rules):
            return all(evaluate(r, member, as_of_end) for r in rules)
        case AnyOf(rules=rules):
            return any(evaluate(r, member, as_of_end) for r in rules)
        case Not(rule=inner):
            return not evaluate(inner, member, as_of_end)
    raise TypeError(f"not a rule: {rule!r}")


def explain(rule: Rule, member: MemberFacts, as_of_end: int) -> str | None:
    """None when ``rule`` holds; otherwise why not, naming the first failing part."""
    if evaluate(rule, member, as_of_end):
        return None
    match rule:
        case EventCount(types=types, min=low, within_days=days):
            count = _event_count(rule, member, as_of_end)
            what = f"{count} {' or '.join(types)} event{'' if count == 1 else 's'}"
            return f"has {what}{_window(days)}; needs {_missed(count, low, rule.max)}"
        case Spend(currency=currency, min_minor=low, max_minor=high, within_days=days):
            total = _spend(rule, member, as_of_end)
            needs = _missed(total, low, high, lambda v: str(Money(v, currency)))
            return f"spent {Money(total, currency)}{_window(days)}; needs {needs}"
        case Tenure(min_days=low, max_days=high):
            if member.joined_at is None:
                return "join date is unknown"
            days = (as_of_end - member.joined_at) // SECONDS_PER_DAY
            return f"member for {days} days; needs {_missed(days, low, high)}"
        case Attribute(name=name, op=op, values=values):
            value = member.fields.get(name)
            shown = "missing" if value is None else repr(value)
            if op == "in":
                return f"{name} is {shown}; needs one of {_listed(values)}"
            if op == "not_in":
                return f"{name} is {shown}; must not be one of {_listed(values)}"
            return f"{name} is {shown}; needs it {'present' if op == 'exists' else 'missing'}"
        case Tags(all_of=all_of, any_of=any_of, none_of=none_of):
            tags = member.tags
            lacking = [t for t in all_of if t not in tags]
            if lacking:
                return f"lacks tag {lacking[0]!r}"
            if any_of and not tags.intersection(any_of):
                return f"has none of the tags {_listed(any_of)}"
            return f"has tag {next(t for t in none_of if t in tags)!r}"
        case AllOf(rules=rules):
            return next(r for r in (explain(p, member, as_of_end) for p in rules) if r)
        case AnyOf(rules=rules):
            if not rules:
                return "an empty any_of never holds"
            reasons = (explain(p, member, as_of_end) for p in rules)
            return "none of these holds: " + "; ".join(r for r in reasons if r)
        case Not(rule=inner):
            return f"must not hold: {describe(inner)}"
    raise TypeError(f"not a rule: {rule!r}")


def describe(rule: Rule) -> str:
    """A rule in one line of plain English (for ``not`` reasons and listings)."""
    match rule:
        case EventCount(types=types, min=low, max=high, within_days=days):
            return f"{_bounds(low, high)} {' or '.join(types)} events{_window(days)}"
        case Spend(currency=currency, min_minor=low, max_minor=high, within_days=days):
            money = _bounds(low, high, lambda v: str(Money(v, currency)))
            return f"spent {money}{_window(days)}"
        case Tenure(min_days=low, max_days=high):
            return f"member for {_bounds(low, high)} days"
        case Attribute(name=name, op=op, values=values):
            if op in ("in", "not_in"):
                return f"{name} {op.replace('_', ' ')} {_listed(values)}"
            return f"{name} is {'present' if op == 'exists' else 'missing'}"
        case Tags(all_of=all_of, any_of=any_of, none_of=none_of):
            parts = [
                f"{label} {_listed(tags)}"
                for label, tags in (
                    ("has all tags", all_of),
                    ("has a tag of", any_of),
                    ("has no tag of", none_of),
                )
                if tags
            ]
            return " and ".join(parts) or "any tags"
        case AllOf(rules=rules):
            return "all of (" + "; ".join(describe(r) for r in rules) + ")"
        case AnyOf(rules=rules):
            return "any of (" + "; ".join(describe(r) for r in rules) + ")"
        case Not(rule=inner):
            return f"not ({describe(inner)})"
    raise TypeError(f"not a rule: {rule!r}")


# --- the leaves ------------------------------------------------------------------------


def _in_window(occurred_at: int, as_of_end: int, within_days: int | None) -> bool:
    if occurred_at >= as_of_end:
        return False
    return within_days is None or occurred_at >= as_of_end - within_days * SECONDS_PER_DAY


def _event_count(rule: EventCount, member: MemberFacts, as_of_end: int) -> int:
    return sum(
        1
        for e in member.events
        if e.type in rule.types and _in_window(e.occurred_at, as_of_end, rule.within_days)
    )


def _spend(rule: Spend, member: MemberFacts, as_of_end: int) -> int:
    return sum(
        e.amount_minor
        for e in member.events
        if e.amount_minor is not None
        and e.type == PURCHASE
        and e.currency == rule.currency
        and _in_window(e.occurred_at, as_of_end, rule.within_days)
    )


def _tenure_holds(rule: Tenure, joined_at: int | None, as_of_end: int) -> bool:
    # Instants, not day counts, so SQL can compare the indexed column with a constant.
    if joined_at is None:
        return False
    if rule.min_days is not None and joined_at > as_of_end - rule.min_days * SECONDS_PER_DAY:
        return False
    return rule.max_days is None or joined_at > as_of_end - (rule.max_days + 1) * SECONDS_PER_DAY


def _attribute_holds(rule: Attribute, value: str | None) -> bool:
    match rule.op:
        case "in":
            return value is not None and value in rule.values
        case "not_in":
            return value is None or value not in rule.values
        case "exists":
            return value is not None
        case "missing":
            return value is None
    raise ValueError(f"unknown attribute test {rule.op!r}")


def _between(value: int, low: int | None, high: int | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


# --- wording ---------------------------------------------------------------------------


def _window(days: int | None) -> str:
    if days is None:
        return ""
    return f" in the last {days} day{'' if days == 1 else 's'}"


def _bounds(low: int | None, high: int | None, show: Callable[[int], str] = str) -> str:
    if low is not None and high is not None:
        return f"between {show(low)} and {show(high)}"
    if low is not None:
        return f"at least {show(low)}"
    return f"at most {show(high)}" if high is not None else "any number of"


def _missed(value: int, low: int | None, high: int | None, show: Callable[[int], str] = str) -> str:
    """The bound that ``value`` misses."""
    if low is not None and value < low:
        return f"at least {show(low)}"
    return f"at most {show(high)}" if high is not None else _bounds(low, high, show)


def _listed(values: Iterable[str]) -> str:
    return ", ".join(values) or "(nothing)"
