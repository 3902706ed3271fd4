"""What the planner's guards need to know about tonight's candidates, set-based.

``gather_guards`` reads, in a handful of queries over whole tables, each candidate's consent,
preferences (``store.preferences``), rest, recent nudges and tonight's actions
(``domain.plan.MemberState``, with the facts behind each guard for ``nudgeflow why``) and
the earlier actions of each campaign;
``StoredBudgets`` says what each budget has left. No query runs per member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, case, false, func, or_, select

from domain.campaign import Campaign, Policy
from domain.keys import occurrence_for
from domain.plan import MemberState, PriorAction
from store.consent import standing_withdrawals
from store.preferences import Preferences, standing_preferences
from store.schema import actions, member_tags, members

# Action states that count as a nudge for frequency caps and fatigue: everything that is or
# may become an email. Held-out and failed actions never reach the member.
COUNTED_STATES = ("planned", "reserved", "reward_issued", "sending", "sent", "unknown")
SYSTEM = "system"
# Up to this many member keys are sent to the database as IN lists; above it one scan of the
# table filtered in Python is cheaper than thousands of bound parameters.
_IN_LIST_LIMIT = 2_000
_CHUNK = 500


# --- guard facts ------------------------------------------------------------------------


def _restricted(
    query: Select[Any], column: ColumnElement[int], wanted: set[int]
) -> Iterable[Select[Any]]:
    """``query`` limited to ``wanted`` member keys: IN lists for a few, else the whole table
    (the caller filters in Python)."""
    if len(wanted) > _IN_LIST_LIMIT:
        yield query
        return
    keys = sorted(wanted)
    for start in range(0, len(keys), _CHUNK):
        yield query.where(column.in_(keys[start : start + _CHUNK]))


def _raw_rows(connection: Connection, query: Select[Any]) -> list[Any]:
    """The DBAPI rows of ``query``, skipping SQLAlchemy's Row objects and result processing.

    Guard facts read up to a few million rows a night; building a ``Row`` for each cost more
    than the queries (8.7 s of 22 s at 1 M members). Callers convert what they keep:
    ``_day`` for dates (text on SQLite), ``bool`` for booleans (0/1 on SQLite).
    """
    result = connection.execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def fatigue_tag_active(policy: Policy, as_of: date) -> ColumnElement[bool]:
    """A rest is active on ``as_of`` from the night after it was set (the tag is written
    after that night's plan) until ``expires_on`` inclusive."""
    return and_(
        member_tags.c.tag == policy.fatigue_tag,
        member_tags.c.source == SYSTEM,
        or_(member_tags.c.added_on.is_(None), member_tags.c.added_on < as_of),
        or_(member_tags.c.expires_on.is_(None), member_tags.c.expires_on >= as_of),
    )


def gather_guards(
    connection: Connection,
    campaigns: Sequence[Campaign],
    candidates: Mapping[str, Sequence[int]],
    policy: Policy,
    as_of: date,
    as_of_end: int,
) -> tuple[dict[int, MemberState], dict[str, dict[int, list[PriorAction]]]]:
    """Guard facts for every candidate and their earlier actions per campaign."""
    wanted: set[int] = set()
    for keys in candidates.values():
        wanted.update(keys)
    if not wanted:
        return {}, {c: {} for c in candidates}

    withdrawals = _first_withdrawals(connection, as_of_end)
    # Few members have any: one dict lookup each, and the rest is done for those few.
    preferences: dict[int, Preferences] = standing_preferences(connection, as_of_end)
    resting: dict[int, date | None] = {
        pk: None if until is None else _day(until)
        for pk, until in connection.execute(
            select(member_tags.c.member_pk, member_tags.c.expires_on).where(
                fatigue_tag_active(policy, as_of)
            )
        )
    }

    sends_on: dict[int, list[date]] = defaultdict(list)
    tonight: dict[int, str] = {}
    widest = max((cap.per_days for cap in policy.frequency_caps), default=0)
    a = actions.c
    recent = select(a.member_pk, a.as_of, a.holdout, a.state, a.campaign_id).where(
        a.as_of >= as_of - timedelta(days=widest), a.as_of <= as_of
    )
    for query in _restricted(recent, a.member_pk, wanted):
        for pk, raw_day, holdout, state, campaign_id in _raw_rows(connection, query):
            if pk not in wanted:
                continue
            day = _day(raw_day)
            if day == as_of and not holdout:
                # Held out of a campaign is as if it did not exist: that takes no one.
                # Any one of the night's campaigns will do; the smallest id, so it is stable.
                taker = tonight.get(pk)
                if taker is None or campaign_id < taker:
                    tonight[pk] = campaign_id
            if widest and not holdout and state in COUNTED_STATES:
                sends_on[pk].append(day)

    states: dict[int, MemberState] = {}
    base = select(members.c.id, members.c.member_id, members.c.email_opt_in)
    for query in _restricted(base, members.c.id, wanted):
        for pk, member_id, opt_in in _raw_rows(connection, query):
            if pk in wanted:
                sent = sends_on.get(pk)
                withdrawal = withdrawals.get(pk) if opt_in else None
                prefs = preferences.get(pk)
                states[pk] = MemberState(
                    member_id,
                    bool(opt_in) and withdrawal is None,
                    pk in resting,
                    tuple(sorted(sent)) if sent else (),
                    tonight.get(pk),
                    withdrawal,
                    resting.get(pk),
                    () if prefs is None else tuple(sorted(prefs.categories_out.items())),
                    None if prefs is None else prefs.paused_until,
                )
    return states, _prior_actions(connection, campaigns, candidates, as_of)


def _first_withdrawals(connection: Connection, as_of_end: int) -> dict[int, tuple[str, int]]:
    """member_pk → the first withdrawal (type, epoch seconds) still standing at the night's
    end: one that no ``consent_restored`` event came at or after (``store.consent``)."""
    first: dict[int, tuple[str, int]] = {}
    # No DISTINCT: SQLite would walk the member_pk index over every event to provide it,
    # instead of the (type, occurred_at) index over these few; the earliest is kept here.
    query = standing_withdrawals(as_of_end)
    for pk, kind, at in _raw_rows(connection, query):
        seen = first.get(pk)
        if seen is None or (int(at), kind) < (seen[1], seen[0]):
            first[pk] = (kind, int(at))
    return first


def _prior_actions(
    connection: Connection,
    campaigns: Sequence[Campaign],
    candidates: Mapping[str, Sequence[int]],
    as_of: date,
) -> dict[str, dict[int, list[PriorAction]]]:
    """Earlier actions (any state) of each campaign for its candidates, up to ``as_of``
    (per member in no particular order)."""
    prior: dict[str, dict[int, list[PriorAction]]] = {c: {} for c in candidates}
    by_id = {c.id: c for c in campaigns if c.id in candidates}
    if not by_id:
        return prior
    a = actions.c
    windows = []
    for campaign in by_id.values():
        test = a.campaign_id == campaign.id
        if campaign.occurrence_kind == "date":
            # Date occurrences only matter inside the cooldown (or tonight without one).
            oldest = as_of - timedelta(days=campaign.cooldown_days or 0)
            test = and_(test, a.as_of >= oldest)
        elif campaign.occurrence_kind == "year":
            # Earlier years' birthdays and anniversaries say nothing about this year's.
            test = and_(
                test, or_(a.occurrence == occurrence_for(campaign, as_of), a.as_of == as_of)
            )
        windows.append(test)
    query = select(a.campaign_id, a.member_pk, a.occurrence, a.as_of).where(
        or_(*windows), a.as_of <= as_of
    )
    wanted = {c: set(candidates[c]) for c in by_id}
    everyone: set[int] = set().union(*wanted.values())
    for chunk in _restricted(query, a.member_pk, everyone):
        for campaign_id, pk, occurrence, raw_day in _raw_rows(connection, chunk):
            # Tonight's actions of members who are no longer candidates still use up the
            # campaign's max_per_run (the planner counts them); other rows are not needed.
            if pk in wanted[campaign_id]:
                day = _day(raw_day)
            elif (day := _day(raw_day)) != as_of:
                continue
            prior[campaign_id].setdefault(pk, []).append(PriorAction(occurrence, day))
    # In no particular order: the planner asks "any such action?", and sorting a million
    # short lists costs seconds a night.
    return prior


# --- budgets ----------------------------------------------------------------------------


class StoredBudgets:
    """``domain.plan.Budgets`` read from the stored actions until the ledger exists: what
    is left of each campaign's total and of this business month's allowance, in minor units
    of the budget's currency (the cost of every non-held-out, non-failed action counts)."""

    def __init__(self, connection: Connection, campaigns: Sequence[Campaign], as_of: date) -> None:
        self._remaining: dict[str, int] = {}
        budgeted = {c.id: c.budget for c in campaigns if c.budget is not None}
        if not budgeted:
            return
        month_start = as_of.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        a = actions.c
        in_month = and_(a.as_of >= month_start, a.as_of < next_month)
        rows = connection.execute(
            select(
                a.campaign_id,
                func.coalesce(func.sum(a.cost_minor), 0),
                func.coalesce(func.sum(case((in_month, a.cost_minor), else_=0)), 0),
            )
            .where(
                a.campaign_id.in_(sorted(budgeted)),
                a.holdout == false(),
                a.state.not_in(("failed", "held_out")),
            )
            .group_by(a.campaign_id)
        ).all()
        spent = {campaign_id: (int(total), int(month)) for campaign_id, total, month in rows}
        for campaign_id, budget in budgeted.items():
            total, month = spent.get(campaign_id, (0, 0))
            left = []
            if budget.total is not None:
                left.append(budget.total.amount_minor - total)
            if budget.per_month is not None:
                left.append(budget.per_month.amount_minor - month)
            self._remaining[campaign_id] = max(0, min(left))

    def remaining(self, campaign_id: str) -> int | None:
        return self._remaining.get(campaign_id)
