"""The rule language: one data structure, two evaluators.

A rule is a tree of frozen dataclasses (``Rule``). ``RuleSpec`` is the shape users write in
YAML; ``RuleSpec.to_rule()`` turns it into the tree. ``audience.evaluate`` evaluates a tree
in pure Python; ``store.rulesql`` compiles the same tree to SQLAlchemy Core. A hypothesis
property test holds the two to the same answers.

Semantics (both evaluators):

* Every window ends at ``as_of_end`` (the end of the business day, epoch seconds); an event
  counts when ``as_of_end - within_days * 86400 <= occurred_at < as_of_end`` (no lower bound
  without ``within``).
* ``EventCount``: the number of matching events is ``>= min`` and ``<= max`` (each optional).
* ``Spend``: the sum of ``amount_minor`` of ``purchase`` events in ``currency`` (0 if none).
* ``Tenure``: whole days since ``joined_at``; false when ``joined_at`` is unknown.
* ``Attribute``: a member column or custom attribute compared as text. ``in`` is false when
  the value is missing; ``not_in`` is true when it is missing; ``exists`` tests presence.
* ``Tags``: over the member's active tags.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from audience.fields import STRICT, Count, Days, NonNegativeMoney, OneOrMany
from audience.filespec import Broken, FileSpec

PURCHASE = "purchase"

# Member columns a rule may name directly; any other name is a custom attribute.
MEMBER_FIELDS = ("email", "first_name", "last_name", "country", "timezone", "stripe_customer_id")


@dataclass(frozen=True)
class EventCount:
    types: tuple[str, ...]
    min: int | None = None
    max: int | None = None
    within_days: int | None = None


@dataclass(frozen=True)
class Spend:
    currency: str
    min_minor: int | None = None
    max_minor: int | None = None
    within_days: int | None = None


@dataclass(frozen=True)
class Tenure:
    min_days: int | None = None
    max_days: int | None = None


@dataclass(frozen=True)
class Attribute:
    name: str
    op: Literal["in", "not_in", "exists", "missing"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tags:
    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    none_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class AllOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    rule: Rule


Rule = EventCount | Spend | Tenure | Attribute | Tags | AllOf | AnyOf | Not

ALWAYS = AllOf(())  # the empty conjunction holds for everyone


# --- the YAML shape -------------------------------------------------------------------


def _days_in_order(valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
    """``min`` and/or ``max`` days, and ``min`` not above ``max`` (when both are valid)."""
    if not given & {"min", "max"}:
        yield None, "give at least one of min or max"
    low, high = valid.get("min"), valid.get("max")
    if low is not None and high is not None and low > high:
        yield None, f"min ({low}d) is greater than max ({high}d)"


class EventCountSpec(FileSpec):
    """``events: {type: purchase, min: 3, within: 365d}``"""

    model_config = STRICT
    type: OneOrMany = Field(min_length=1)
    """The event type or types to count. Example: `type: [review_posted, referral_made]`."""
    min: Count | None = None
    """At least this many events, 0 to 1,000,000. Example: `min: 3`."""
    max: Count | None = None
    """At most this many events, 0 to 1,000,000. Example: `max: 0`."""
    within: Days | None = None
    """Only events this recent count (before the end of the business day). Example:
    `within: 365d`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given & {"min", "max"}:
            yield None, "give at least one of min or max"
        low, high = valid.get("min"), valid.get("max")
        if low is not None and high is not None and low > high:
            yield None, f"min ({low}) is greater than max ({high})"


class SpendSpec(FileSpec):
    """``spend: {min: "500.00 USD", within: 365d}``: purchases summed in one currency."""

    model_config = STRICT
    min: NonNegativeMoney | None = None
    """Purchases add up to at least this, in its currency (not negative). Example:
    `min: "500.00 USD"`."""
    max: NonNegativeMoney | None = None
    """Purchases add up to at most this, in the same currency. Example: `max: "50.00 USD"`."""
    within: Days | None = None
    """Only purchases this recent count. Example: `within: 365d`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given & {"min", "max"}:
            yield None, "give at least one of min or max"
        low, high = valid.get("min"), valid.get("max")
        if low is not None and high is not None:
            if low.currency != high.currency:
                yield None, "min and max must be in the same currency"
            elif low.amount_minor > high.amount_minor:
                yield None, f"min ({low}) is greater than max ({high})"


class TenureSpec(FileSpec):
    """``tenure: {min: 1095d}``: days since the member joined."""

    model_config = STRICT
    min: Days | None = None
    """The member joined at least this long ago. Example: `min: 1095d`."""
    max: Days | None = None
    """The member joined at most this long ago. Example: `max: 30d`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        yield from _days_in_order(valid, given)


class AttributeSpec(FileSpec):
    """``{in: [US, CA]}``, ``{not_in: [...]}`` or ``{exists: true}`` for one attribute."""

    model_config = STRICT
    in_: OneOrMany | None = Field(default=None, alias="in")
    """The attribute has one of these values (false when it is missing). Example:
    `in: [pro, team]`."""
    not_in: OneOrMany | None = None
    """The attribute has none of these values (true when it is missing). Example:
    `not_in: [free]`."""
    exists: bool | None = None
    """The attribute is present (true) or missing (false). Example: `exists: true`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if len(given & {"in_", "not_in", "exists"}) != 1:
            yield None, "give exactly one of in, not_in or exists"


class TagsSpec(FileSpec):
    """``tags: {all_of: [...], any_of: [...], none_of: [...]}``"""

    model_config = STRICT
    all_of: list[str] = Field(default_factory=list)
    """The member has every one of these tags. Example: `all_of: [beta, newsletter]`."""
    any_of: list[str] = Field(default_factory=list)
    """The member has at least one of these tags. Example: `any_of: [vip, staff-pick]`."""
    none_of: list[str] = Field(default_factory=list)
    """The member has none of these tags. Example: `none_of: [staff, nudge-fatigued]`."""


class RuleSpec(FileSpec):
    """A rule as written in YAML. Several keys in one mapping must all hold."""

    model_config = STRICT
    events: EventCountSpec | None = None
    """Between min and max events of the type(s), optionally only recent ones. Example:
    `events: {type: purchase, min: 3, within: 365d}`."""
    spend: SpendSpec | None = None
    """The member's purchases in one currency add up to between min and max. Example:
    `spend: {min: "500.00 USD", within: 365d}`."""
    tenure: TenureSpec | None = None
    """How long ago the member joined. Example: `tenure: {min: 1095d}`."""
    attributes: dict[str, AttributeSpec] | None = None
    """Tests on member columns or extra import columns, by name. Example:
    `attributes: {plan: {in: [pro, team]}}`."""
    tags: TagsSpec | None = None
    """Tests on the member's tags (imported tags and system tags). Example:
    `tags: {none_of: [staff]}`."""
    all_of: list[RuleSpec] | None = None
    """Every listed rule holds. Example: `all_of: [{tenure: {min: 365d}}, {tags: {any_of:
    [vip]}}]`."""
    any_of: list[RuleSpec] | None = None
    """At least one listed rule holds. Example: `any_of: [{spend: {min: "500.00 USD"}},
    {events: {type: review_posted, min: 1}}]`."""
    not_: RuleSpec | None = Field(default=None, alias="not")
    """The rule does not hold. Example: `not: {tags: {any_of: [staff]}}`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given:
            yield (
                None,
                "a rule needs at least one of events, spend, tenure, attributes, tags, "
                "all_of, any_of or not",
            )

    def to_rule(self) -> Rule:
        parts: list[Rule] = []
        if self.events is not None:
            e = self.events
            parts.append(EventCount(tuple(e.type), e.min, e.max, e.within))
        if self.spend is not None:
            s = self.spend
            currency = (s.min or s.max).currency  # type: ignore[union-attr]
            parts.append(
                Spend(
                    currency,
                    s.min.amount_minor if s.min else None,
                    s.max.amount_minor if s.max else None,
                    s.within,
                )
            )
        if self.tenure is not None:
            parts.append(Tenure(self.tenure.min, self.tenure.max))
        for name, test in (self.attributes or {}).items():
            if test.in_ is not None:
                parts.append(Attribute(name, "in", tuple(test.in_)))
            elif test.not_in is not None:
                parts.append(Attribute(name, "not_in", tuple(test.not_in)))
            else:
                parts.append(Attribute(name, "exists" if test.exists else "missing"))
        if self.tags is not None:
            t = self.tags
            parts.append(Tags(tuple(t.all_of), tuple(t.any_of), tuple(t.none_of)))
        if self.all_of is not None:
            parts.append(AllOf(tuple(r.to_rule() for r in self.all_of)))
        if self.any_of is not None:
            parts.append(AnyOf(tuple(r.to_rule() for r in self.any_of)))
        if self.not_ is not None:
            parts.append(Not(self.not_.to_rule()))
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def event_types(rule: Rule) -> set[str]:
    """Every event type a rule mentions (``validate`` warns about types never seen)."""
    match rule:
        case EventCount(types=types):
            return set(types)
        case Spend():
            return {PURCHASE}
        case AllOf(rules=rules) | AnyOf(rules=rules):
            return set().union(*(event_types(r) for r in rules)) if rules else set()
        case Not(rule=inner):
            return event_types(inner)
        case _:
            return set()
