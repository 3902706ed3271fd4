"""The two evaluators of the rule language agree: ``store.rulesql`` selects exactly the
members that ``audience.evaluate`` accepts, on SQLite and PostgreSQL; and so do the two of
the triggers, ``store.audience_sql.trigger_condition`` and ``domain.triggers``.

Members, tags and events are drawn near every edge the semantics has (window bounds,
``as_of_end`` itself, tenure day boundaries, tag expiry on ``as_of``, missing values, NULL
amounts, a second currency); rules are drawn from every node type, nested three deep.
Triggers get nights around Feb 29 and DST changes, instants either side of local midnight,
event windows' bounds, stage entries around the previous run, and every trigger kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audience.criteria import Audience
from audience.evaluate import evaluate
from audience.facts import EventFact, MemberFacts
from audience.rules import (
    ALWAYS,
    MEMBER_FIELDS,
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
from domain.campaign import Trigger
from domain.triggers import TriggerFacts, TriggerNight, event_window_start, trigger_fires
from nudgeflow.timeutil import SECONDS_PER_DAY as DAY
from nudgeflow.timeutil import day_end, to_epoch
from store.audience_sql import candidate_from, trigger_condition
from store.rulesql import RuleCompiler, select_matching
from store.schema import events, member_tags, members, profiles, stage_history

AS_OF = date(2024, 6, 30)
END = day_end(AS_OF, ZoneInfo("UTC"))
WINDOWS = (0, 1, 2, 7, 30)
# Instants relative to END: one second either side of every window's lower bound, END itself
# and just after it (never counted), and something older than every window.
EDGES = sorted({-d * DAY + k for d in WINDOWS for k in (-1, 0, 1)} | {-400 * DAY})
TYPES = ("purchase", "review_posted", "email_clicked")
TAGS = ("vip", "beta", "nudge-fatigued")
VALUES = ("US", "CA", "us", "")
CUSTOM = ("plan", "utm source", "a.b")  # keys of members.attributes, spaces and dots included
EXPIRIES = (None, AS_OF - timedelta(days=1), AS_OF, AS_OF + timedelta(days=1))

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass(frozen=True)
class Member:
    joined_at: int | None
    columns: Mapping[str, str | None]  # members columns from MEMBER_FIELDS
    attributes: Mapping[str, str] | None
    tags: Sequence[tuple[str, str, date | None]]  # (tag, source, expires_on)
    events: Sequence[EventFact]

    def facts(self) -> MemberFacts:
        fields = dict(self.attributes or {})
        fields.update({k: v for k, v in self.columns.items() if v is not None})
        active = frozenset(t for t, _, exp in self.tags if exp is None or exp >= AS_OF)
        return MemberFacts(self.joined_at, fields, active, tuple(self.events))


# --- strategies ------------------------------------------------------------------------

optional = st.none().__or__
event_facts = st.builds(
    EventFact,
    type=st.sampled_from(TYPES),
    occurred_at=st.sampled_from(EDGES).map(lambda o: END + o),
    amount_minor=st.sampled_from((None, 0, 100, 250)),
    currency=st.sampled_from((None, "USD", "EUR")),
)


@st.composite
def community_members(draw: st.DrawFn) -> Member:
    joined = draw(optional(st.sampled_from(EDGES).map(lambda o: END + o)))
    columns = {
        "email": draw(st.sampled_from(("a@x.io", "US"))),
        "country": draw(optional(st.sampled_from(VALUES))),
        "first_name": draw(optional(st.sampled_from(VALUES))),
    }
    attributes = draw(optional(st.dictionaries(st.sampled_from(CUSTOM), st.sampled_from(VALUES))))
    tags = draw(
        st.lists(
            st.tuples(
                st.sampled_from(TAGS),
                st.sampled_from(("import", "system")),
                st.sampled_from(EXPIRIES),
            ),
            max_size=3,
            unique_by=lambda t: (t[0], t[1]),
        )
    )
    return Member(joined, columns, attributes, tags, draw(st.lists(event_facts, max_size=6)))


def _bound(values: Sequence[int]) -> st.SearchStrategy[int | None]:
    # None only as often as each value: rules whose every condition has a window take the
    # compiler's lower-bound prefilter, which needs exercising as much as the rest.
    return st.sampled_from((None, *values))


def _names(pool: Sequence[str], min_size: int = 0) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(pool), min_size=min_size, max_size=2).map(tuple)


@st.composite
def attributes(draw: st.DrawFn) -> Attribute:
    name = draw(st.sampled_from(("email", "country", "first_name", *CUSTOM, "absent")))
    op = draw(st.sampled_from(("in", "not_in", "exists", "missing")))
    values = draw(_names(VALUES)) if op in ("in", "not_in") else ()
    return Attribute(name, op, values)


leaves: st.SearchStrategy[Rule] = st.one_of(
    st.builds(
        EventCount,
        types=_names(TYPES, min_size=1),
        min=_bound((0, 1, 2, 3)),
        max=_bound((0, 1, 2)),
        within_days=_bound(WINDOWS),
    ),
    st.builds(
        Spend,
        currency=st.sampled_from(("USD", "EUR")),
        min_minor=_bound((0, 100, 250, 350)),
        max_minor=_bound((0, 100, 350)),
        within_days=_bound(WINDOWS),
    ),
    st.builds(Tenure, min_days=_bound(WINDOWS), max_days=_bound(WINDOWS)),
    attributes(),
    st.builds(Tags, all_of=_names(TAGS), any_of=_names(TAGS), none_of=_names(TAGS)),
)


def rules(depth: int = 3) -> st.SearchStrategy[Rule]:
    if depth == 0:
        return leaves
    inner = rules(depth - 1)
    parts = st.lists(inner, max_size=3).map(tuple)
    return st.one_of(leaves, parts.map(AllOf), parts.map(AnyOf), inner.map(Not))


# --- the database ----------------------------------------------------------------------


def store(engine: sa.Engine, community: Sequence[Member]) -> dict[int, MemberFacts]:
    """Replace the community in the database; return each member's facts by primary key."""
    now = datetime(2024, 1, 1)
    member_rows: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    for pk, member in enumerate(community, start=1):
        member_rows.append(
            {
                "id": pk,
                "member_id": f"m{pk}",
                **member.columns,
                "joined_at": member.joined_at,
                "attributes": member.attributes,
                "email_opt_in": True,
                "row_hash": "x",
                "created_at": now,
                "updated_at": now,
            }
        )
        tag_rows += [
            {"member_pk": pk, "tag": t, "source": s, "expires_on": e} for t, s, e in member.tags
        ]
        event_rows += [
            {
                "event_id": f"e{pk}.{n}",
                "member_pk": pk,
                "type": e.type,
                "occurred_at": e.occurred_at,
                "amount_minor": e.amount_minor,
                "currency": e.currency,
            }
            for n, e in enumerate(member.events)
        ]
    with engine.begin() as connection:
        for table in (events, member_tags, members):
            connection.execute(table.delete())
        for table, rows in ((members, member_rows), (member_tags, tag_rows), (events, event_rows)):
            if rows:
                connection.execute(table.insert(), rows)
    return {pk: member.facts() for pk, member in enumerate(community, start=1)}


# --- the properties --------------------------------------------------------------------


def test_member_fields_cover_the_generated_columns() -> None:
    assert {"email", "country", "first_name"} <= set(MEMBER_FIELDS)
    assert not set(CUSTOM) & set(MEMBER_FIELDS)


@settings(SETTINGS, max_examples=200)
@example(  # events exactly at a window's lower bound and at as_of_end, in both passes
    community=[
        Member(
            END - 7 * DAY,
            {"email": "a@x.io"},
            None,
            [],
            [
                EventFact("purchase", END - 7 * DAY, 100, "USD"),
                EventFact("purchase", END, 100, "USD"),
            ],
        )
    ],
    drawn=[
        EventCount(("purchase",), min=1, within_days=7),
        Spend("USD", min_minor=100, within_days=7),
        EventCount(("purchase",), min=2),
        Tenure(min_days=7, max_days=7),
    ],
)
@given(
    community=st.lists(community_members(), min_size=1, max_size=5),
    drawn=st.lists(rules(), min_size=1, max_size=4),
)
def test_select_matching_agrees_with_evaluate(
    engine: sa.Engine, community: list[Member], drawn: list[Rule]
) -> None:
    facts = store(engine, community)
    with engine.connect() as connection:
        for rule in drawn:
            selected = set(connection.scalars(select_matching(rule, END, AS_OF)))
            accepted = {pk for pk, member in facts.items() if evaluate(rule, member, END)}
            assert selected == accepted, rule


@settings(SETTINGS, max_examples=80)
@given(
    community=st.lists(community_members(), min_size=1, max_size=5),
    drawn=st.lists(rules(), min_size=1, max_size=5),
)
def test_one_compiler_answers_many_rules_and_aggregates_in_one_select(
    engine: sa.Engine, community: list[Member], drawn: list[Rule]
) -> None:
    facts = store(engine, community)
    compiler = RuleCompiler(END, AS_OF)
    # Extra aggregates first and last, so rule aggregates are registered in between.
    counted = compiler.aggregate(sa.func.count(), "events_seen")
    predicates = [compiler.predicate(rule).label(f"r{n}") for n, rule in enumerate(drawn)]
    purchase_at = sa.case((events.c.type == "purchase", events.c.occurred_at))
    last_purchase = compiler.aggregate(sa.func.max(purchase_at))
    query = sa.select(members.c.id, counted, last_purchase, *predicates).select_from(
        compiler.from_clause()
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    assert {row[0] for row in rows} == set(facts)
    for pk, seen, last, *answers in rows:
        member = facts[pk]
        before = [e for e in member.events if e.occurred_at < END]
        assert seen == (len(before) or None)
        assert last == max((e.occurred_at for e in before if e.type == "purchase"), default=None)
        expected = [evaluate(rule, member, END) for rule in drawn]
        assert [None if a is None else bool(a) for a in answers] == expected, drawn


# --- triggers: store.audience_sql against domain.triggers --------------------------------

ZONE = ZoneInfo("America/New_York")
# Feb 28 of a common and of a leap year, Feb 29, the nights DST starts and ends in New York,
# and an ordinary night.
NIGHTS = (
    date(2025, 2, 28),
    date(2024, 2, 28),
    date(2024, 2, 29),
    date(2026, 3, 8),
    date(2025, 11, 2),
    date(2024, 6, 30),
)
QUIET = (1, 7, 30)  # inactivity periods
# Local times near both ends of a business day (New York's evening is the next UTC day).
CLOCK = ((0, 0, 0), (0, 30, 0), (12, 0, 0), (20, 30, 0), (23, 59, 59))


# Low to high, as a lifecycle lists its stages: what a move up or down means.
STAGE_ORDER = ("adopter", "loyalist", "advocate")


@dataclass(frozen=True)
class TriggerCase:
    night: TriggerNight
    members: Sequence[TriggerFacts]
    triggers: Sequence[tuple[Trigger, Audience]]


def _days_near(as_of: date) -> list[date]:
    """Days whose anniversaries or birthdays fall on ``as_of`` or beside it, over 4 years."""
    found = set()
    for back in range(4):
        year = as_of.year - back
        for month, day in ((as_of.month, as_of.day), (2, 28), (2, 29), (3, 1)):
            with suppress(ValueError):
                found.add(date(year, month, day))
        for shift in (-1, 1):
            with suppress(ValueError):
                found.add((as_of + timedelta(days=shift)).replace(year=year))
    return sorted(found)


def _instants_near(as_of: date) -> st.SearchStrategy[int]:
    days = _days_near(as_of)
    return st.builds(
        lambda day, clock: to_epoch(datetime(day.year, day.month, day.day, *clock, tzinfo=ZONE)),
        st.sampled_from(days),
        st.sampled_from(CLOCK),
    )


@st.composite
def trigger_cases(draw: st.DrawFn) -> TriggerCase:
    as_of = draw(st.sampled_from(NIGHTS))
    previous = draw(st.sampled_from((None, 1, 2, 5)))
    previous_as_of = None if previous is None else as_of - timedelta(days=previous)
    end = day_end(as_of, ZONE)
    start = event_window_start(as_of, previous_as_of, ZONE)
    edges = sorted(
        {start - 1, start, start + 1, end - 1, end, end + 1, end - 400 * DAY}
        | {end - q * DAY + k for q in QUIET for k in (-1, 0, 1)}
    )
    events = st.builds(EventFact, type=st.sampled_from(TYPES), occurred_at=st.sampled_from(edges))
    birthdays = [(d.month, d.day) for d in _days_near(as_of)]
    members = []
    for _ in range(draw(st.integers(1, 6))):
        month, day = draw(st.sampled_from([(None, None), (as_of.month, None), *birthdays]))
        entered = draw(optional(st.sampled_from((-10, -5, -3, -2, -1, 0, 1))))
        members.append(
            TriggerFacts(
                joined_at=draw(optional(_instants_near(as_of))),
                first_purchase_at=draw(optional(_instants_near(as_of))),
                birth_month=month,
                birth_day=day,
                stage=draw(st.sampled_from(STAGE_ORDER)),
                stage_entered_on=None if entered is None else as_of + timedelta(days=entered),
                stage_entry_initial=draw(st.booleans()),
                events=tuple(draw(st.lists(events, max_size=4))),
                # The stage left when the open one began (only with an open stage row).
                previous_stage=None
                if entered is None
                else draw(st.sampled_from((None, *STAGE_ORDER))),
            )
        )
    triggers = st.one_of(
        st.just(Trigger("schedule")),
        st.just(Trigger("stage_entry")),
        st.builds(
            Trigger,
            kind=st.just("stage_entry"),
            direction=st.sampled_from(("up", "down", "any")),
            stage_order=st.just(()),
        ),
        st.builds(
            Trigger,
            kind=st.just("stage_entry"),
            direction=st.sampled_from(("up", "down", "any")),
            stage_order=st.just(STAGE_ORDER),
        ),
        st.just(Trigger("birthday")),
        st.builds(Trigger, kind=st.just("event"), types=_names(TYPES, min_size=1)),
        st.builds(
            Trigger,
            kind=st.just("anniversary"),
            of=st.sampled_from(("joined_at", "first_purchase")),
            years=st.integers(1, 3),
        ),
        st.builds(
            Trigger,
            kind=st.just("inactivity"),
            types=_names(TYPES, min_size=1),
            for_days=st.sampled_from(QUIET),
        ),
    )
    audiences = st.builds(
        Audience, rule=st.just(ALWAYS), entered_within_days=st.sampled_from((None, 7))
    )
    drawn = draw(st.lists(st.tuples(triggers, audiences), min_size=1, max_size=6))
    return TriggerCase(TriggerNight(as_of, end, previous_as_of, ZONE), members, drawn)


def store_trigger_facts(engine: sa.Engine, case: TriggerCase) -> None:
    """Replace the community with members, profiles, open stage rows and events."""
    now = datetime(2024, 1, 1)
    rows: dict[sa.Table, list[dict[str, Any]]] = {
        members: [],
        profiles: [],
        stage_history: [],
        events: [],
    }
    for pk, m in enumerate(case.members, start=1):
        rows[members].append(
            {
                "id": pk,
                "member_id": f"m{pk}",
                "email": f"m{pk}@x.io",
                "joined_at": m.joined_at,
                "birth_month": m.birth_month,
                "birth_day": m.birth_day,
                "email_opt_in": True,
                "row_hash": "x",
                "created_at": now,
                "updated_at": now,
            }
        )
        rows[profiles].append(
            {
                "member_pk": pk,
                "as_of": case.night.as_of,
                "stage": m.stage,
                "stage_entered_on": m.stage_entered_on,
                "first_purchase_at": m.first_purchase_at,
                "frequency": 0,
                "monetary_minor": 0,
                "currency": "USD",
                "score": 0.0,
            }
        )
        if m.stage_entered_on is not None and m.previous_stage is not None:
            # The stage left when the open one began: it says which way the member moved.
            rows[stage_history].append(
                {
                    "member_pk": pk,
                    "stage": m.previous_stage,
                    "entered_on": m.stage_entered_on - timedelta(days=30),
                    "left_on": m.stage_entered_on,
                    "initial": False,
                }
            )
        if m.stage_entered_on is not None:
            rows[stage_history].append(
                {
                    "member_pk": pk,
                    "stage": m.stage,
                    "entered_on": m.stage_entered_on,
                    "left_on": None,
                    "initial": m.stage_entry_initial,
                }
            )
        rows[events] += [
            {
                "event_id": f"e{pk}.{n}",
                "member_pk": pk,
                "type": e.type,
                "occurred_at": e.occurred_at,
            }
            for n, e in enumerate(m.events)
        ]
    with engine.begin() as connection:
        for table in (events, stage_history, profiles, member_tags, members):
            connection.execute(table.delete())
        for table, table_rows in rows.items():
            if table_rows:
                connection.execute(table.insert(), table_rows)


@settings(SETTINGS, max_examples=150)
@given(case=trigger_cases())
def test_trigger_selection_agrees_with_the_python_triggers(
    engine: sa.Engine, case: TriggerCase
) -> None:
    store_trigger_facts(engine, case)
    night = case.night
    compiler = RuleCompiler(night.as_of_end, night.as_of)
    with engine.connect() as connection:
        conditions = [
            trigger_condition(
                connection,
                compiler,
                audience,
                trigger,
                night.as_of,
                night.as_of_end,
                night.previous_as_of,
                night.zone,
            )
            for trigger, audience in case.triggers
        ]
        flags = [sa.case((c, 1), else_=0) for c in conditions]
        query = sa.select(members.c.id, *flags).select_from(candidate_from(compiler))
        rows = connection.execute(query.order_by(members.c.id)).all()
    assert [row[0] for row in rows] == list(range(1, len(case.members) + 1))
    for pk, *answers in rows:
        member = case.members[pk - 1]
        expected = [trigger_fires(t, a, member, night) for t, a in case.triggers]
        assert [bool(a) for a in answers] == expected, (member, case.triggers)
