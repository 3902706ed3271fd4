"""The rule language (``audience.rules``) compiled to SQLAlchemy Core, set-based.

Every event-count and spend condition that one ``RuleCompiler`` sees becomes a conditional
aggregate of a single ``GROUP BY member_pk`` pass over ``events``; equal conditions share a
column. Rules become boolean expressions over ``members`` columns, those aggregate columns
and ``EXISTS`` on ``member_tags``, so a whole audience (or every lifecycle stage at once) is
one query, never one per member. ``audience.evaluate`` is the reference: the property test
``tests/integration/store/test_rules_agree.py`` holds the two to the same answers.

Every predicate is two-valued (never SQL ``NULL``), so ``NOT`` means what it does in Python:
missing values are tested explicitly and aggregates are coalesced to 0.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
)

from audience.rules import (
    MEMBER_FIELDS,
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
from nudgeflow.timeutil import SECONDS_PER_DAY
from store.schema import events, member_tags, members

# The aggregate pass's alias. Predicates are built before the pass exists (more rules may
# add columns to it), so they name its columns as text under this fixed alias.
AGGREGATES = "event_aggregates"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

# (kind, event types, lower bound of the window or None, currency or None)
_Key = tuple[str, tuple[str, ...], int | None, str | None]


class RuleCompiler:
    """Compiles rules for one evaluation instant into predicates sharing one event pass.

    Use: call ``predicate`` (and ``aggregate``) as often as needed, then select from
    ``from_clause()``, which must come last.
    """

    def __init__(self, as_of_end: int, as_of: date) -> None:
        self.as_of_end = as_of_end  # windows end here (epoch seconds)
        self.as_of = as_of  # the business day: tags expiring before it are inactive
        self._aggregates: dict[str, ColumnElement[Any]] = {}
        self._keys: dict[_Key, str] = {}
        self._extra = False  # an aggregate() of unknown shape needs every earlier event
        self._from: FromClause | None = None

    # --- public ------------------------------------------------------------------------

    def predicate(self, rule: Rule) -> ColumnElement[bool]:
        """A boolean expression over ``members`` (and the aggregate pass) for ``rule``."""
        match rule:
            case EventCount(types=types, min=low, max=high, within_days=days):
                column = self._condition("count", types, days, None)
                return _between(func.coalesce(column, 0), low, high)
            case Spend(currency=currency, min_minor=low, max_minor=high, within_days=days):
                column = self._condition("spend", (PURCHASE,), days, currency)
                return _between(func.coalesce(column, 0), low, high)
            case Tenure():
                return self._tenure(rule)
            case Attribute():
                return _attribute(rule)
            case Tags(all_of=all_of, any_of=any_of, none_of=none_of):
                parts = [self._has_tag((tag,)) for tag in dict.fromkeys(all_of)]
                if any_of:
                    parts.append(self._has_tag(any_of))
                if none_of:
                    parts.append(not_(self._has_tag(none_of)))
                return and_(*parts) if parts else true()
            case AllOf(rules=rules):
                return and_(*(self.predicate(r) for r in rules)) if rules else true()
            case AnyOf(rules=rules):
                return or_(*(self.predicate(r) for r in rules)) if rules else false()
            case Not(rule=inner):
                return not_(self.predicate(inner))
        raise TypeError(f"not a rule: {rule!r}")

    def aggregate(
        self, expression: ColumnElement[Any], name: str | None = None
    ) -> ColumnElement[Any]:
        """Register an extra aggregate over ``events`` rows (e.g. sum of score points, max
        purchase time) in the same pass; returns the column as seen from outside (NOT
        coalesced).

        ``expression`` is a whole aggregate over ``events`` columns, e.g.
        ``func.max(case((events.c.type == "purchase", events.c.occurred_at)))``; the pass
        only sees events before ``as_of_end``. ``name`` (lower-case identifier) is the
        column's name in the pass; members without events read ``NULL``.
        """
        self._extra = True
        for known, registered in self._aggregates.items():
            if name in (None, known) and registered.compare(expression):
                return self._column(known, expression)
        if name is not None:
            if not _NAME.match(name) or name.startswith("c_") or name == "member_pk":
                raise ValueError(f"aggregate name {name!r}: use a lower-case identifier")
            if name in self._aggregates:
                raise ValueError(f"aggregate {name!r} is already registered differently")
        if name is None:
            name = next(
                f"x_{n}"
                for n in range(len(self._aggregates) + 1)
                if f"x_{n}" not in self._aggregates
            )
        return self._register(name, expression)

    def from_clause(self) -> FromClause:
        """``members``, left-joined to the aggregate pass when any rule needs one."""
        if self._from is None:
            self._from = self._build_from()
        return self._from

    # --- the aggregate pass -------------------------------------------------------------

    def _condition(
        self, kind: str, types: tuple[str, ...], days: int | None, currency: str | None
    ) -> ColumnElement[Any]:
        wanted = tuple(sorted(set(types)))
        low = None if days is None else self.as_of_end - days * SECONDS_PER_DAY
        key: _Key = (kind, wanted, low, currency)
        name = self._keys.get(key)
        if name is None:
            name = f"c_{len(self._keys)}"
            self._keys[key] = name
            self._register(name, _conditional_sum(key))
        return self._column(name, self._aggregates[name])

    def _register(self, name: str, expression: ColumnElement[Any]) -> ColumnElement[Any]:
        if self._from is not None:
            raise RuntimeError("from_clause() was already built; register aggregates first")
        self._aggregates[name] = expression
        return self._column(name, expression)

    @staticmethod
    def _column(name: str, expression: ColumnElement[Any]) -> ColumnElement[Any]:
        return literal_column(f"{AGGREGATES}.{name}", type_=expression.type)

    def _build_from(self) -> FromClause:
        if not self._aggregates:
            return members
        # "+ 0" keeps SQLite off ix_events_member_pk_occurred_at: walking that index to save
        # the GROUP BY sort costs one random table read per event (3-4x slower on 10 M
        # events than a scan and a sort). PostgreSQL hashes the groups either way.
        # The CAST gives the pass's column INTEGER affinity again, without which SQLite
        # cannot build the automatic index that the join to ``members`` needs.
        member_pk = cast(events.c.member_pk + literal_column("0"), Integer)
        where = [events.c.occurred_at + literal_column("0") < self.as_of_end]
        if not self._extra:
            # Only the rules' own conditions: skip rows none of them counts before the sort,
            # and let a narrow window use ix_events_type_occurred_at.
            keys = list(self._keys)
            where.append(events.c.type.in_(sorted({t for k in keys for t in k[1]})))
            lows = [k[2] for k in keys]
            if None not in lows:
                where.append(events.c.occurred_at >= min(low for low in lows if low is not None))
        columns = [expression.label(name) for name, expression in self._aggregates.items()]
        passed = (
            select(member_pk.label("member_pk"), *columns)
            .where(*where)
            .group_by(member_pk)
            .subquery(AGGREGATES)
        )
        return members.outerjoin(passed, passed.c.member_pk == members.c.id)

    # --- members and tags ---------------------------------------------------------------

    def _tenure(self, rule: Tenure) -> ColumnElement[bool]:
        joined = members.c.joined_at
        parts: list[ColumnElement[bool]] = [joined.is_not(None)]
        if rule.min_days is not None:
            parts.append(joined <= self.as_of_end - rule.min_days * SECONDS_PER_DAY)
        if rule.max_days is not None:
            parts.append(joined > self.as_of_end - (rule.max_days + 1) * SECONDS_PER_DAY)
        return and_(*parts)

    def _has_tag(self, tags: tuple[str, ...]) -> ColumnElement[bool]:
        """Whether the member has any of ``tags`` active on ``as_of``."""
        return (
            exists()
            .where(
                member_tags.c.member_pk == members.c.id,
                member_tags.c.tag.in_(tags) if len(tags) > 1 else member_tags.c.tag == tags[0],
                or_(member_tags.c.expires_on.is_(None), member_tags.c.expires_on >= self.as_of),
            )
            .correlate(members)
        )


def select_matching(rule: Rule, as_of_end: int, as_of: date) -> Select[Any]:
    """``SELECT members.id`` of every member for whom ``rule`` holds."""
    compiler = RuleCompiler(as_of_end, as_of)
    where = compiler.predicate(rule)
    return select(members.c.id).select_from(compiler.from_clause()).where(where)


def _conditional_sum(key: _Key) -> ColumnElement[Any]:
    kind, types, low, currency = key
    tests = [events.c.type.in_(types) if len(types) != 1 else events.c.type == types[0]]
    if low is not None:
        tests.append(events.c.occurred_at >= low)
    if kind == "count":
        return func.sum(case((and_(*tests), 1), else_=0), type_=BigInteger)
    tests.append(events.c.currency == currency)
    # NULL amounts drop out of SUM; a member with none at all reads NULL, coalesced later.
    return func.sum(case((and_(*tests), events.c.amount_minor)), type_=BigInteger)


def _between(value: ColumnElement[Any], low: int | None, high: int | None) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if low is not None:
        parts.append(value >= low)
    if high is not None:
        parts.append(value <= high)
    return and_(*parts) if parts else true()


def _attribute(rule: Attribute) -> ColumnElement[bool]:
    value: ColumnElement[Any] = (
        members.c[rule.name]
        if rule.name in MEMBER_FIELDS
        else members.c.attributes[rule.name].as_string()
    )
    match rule.op:
        case "in":
            return and_(value.is_not(None), value.in_(rule.values)) if rule.values else false()
        case "not_in":
            return or_(value.is_(None), value.not_in(rule.values)) if rule.values else true()
        case "exists":
            return value.is_not(None)
        case "missing":
            return value.is_(None)
    raise ValueError(f"unknown attribute test {rule.op!r}")
