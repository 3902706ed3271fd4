"""Keeping the fatigue tag up to date after a night's plan, set-based.

Recovery comes first: a resting member with any response or engagement since the start of
the day they were tagged gets their rest ended. Then members who are not resting and whose
last ``unanswered_nudges`` nudges (since their last rest began) all closed unanswered are
tagged, resting them through ``audience.fatigue.rest_until``. One query finds those nudges
and whether each was answered; the pure ``audience.fatigue.is_fatigued`` decides.

There is one ``member_tags`` row per member for the tag (source ``system``). Ending a rest
sets its ``expires_on`` to the day before instead of deleting the row: ``added_on`` has to
survive as "when the last rest began", or the unanswered nudges from before it would tag the
member again the very next night.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from audience.fatigue import Nudge, is_fatigued, rest_until
from domain.campaign import Policy
from nudgeflow.timeutil import day_start
from store.guard_facts import COUNTED_STATES, SYSTEM
from store.schema import actions, events, member_tags

# Events that say nothing about interest: delivery receipts and withdrawals of consent.
NOT_ENGAGEMENT = ("email_delivered", "email_bounced", "email_spam_report", "unsubscribed")


@dataclass(frozen=True)
class FatigueResult:
    tagged: int
    recovered: int


def _fatigue_tag(policy: Policy) -> ColumnElement[bool]:
    return and_(member_tags.c.tag == policy.fatigue_tag, member_tags.c.source == SYSTEM)


def _resting(as_of: date) -> ColumnElement[bool]:
    return or_(member_tags.c.expires_on.is_(None), member_tags.c.expires_on >= as_of)


def _engaged(member_pk: ColumnElement[Any], since: ColumnElement[Any] | int, until: int) -> Any:
    return exists().where(
        events.c.member_pk == member_pk,
        events.c.type.not_in(NOT_ENGAGEMENT),
        events.c.occurred_at >= since,
        events.c.occurred_at < until,
    )


def recover(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> int:
    """End the rest of every resting member who engaged since the day they were tagged."""
    tagged = and_(_fatigue_tag(policy), _resting(as_of), member_tags.c.added_on.is_not(None))
    days = connection.execute(select(member_tags.c.added_on).where(tagged).distinct()).scalars()
    starts = {day: day_start(day, zone) for day in days}
    if not starts:
        return 0
    # A few distinct tag dates: map each to the instant its business day began, in SQL.
    since = case(starts, value=member_tags.c.added_on)
    result = connection.execute(
        update(member_tags)
        .where(tagged, _engaged(member_tags.c.member_pk, since, as_of_end))
        .values(expires_on=as_of - timedelta(days=1))
    )
    return int(result.rowcount)


def _lists_type(connection: Connection, types: Any, event_type: Any) -> ColumnElement[bool]:
    """Whether the JSON array ``types`` (an action's response types) holds ``event_type``."""
    if connection.dialect.name == "postgresql":
        listed_pg: ColumnElement[bool] = type_coerce(types, JSONB).has_key(event_type)
        return listed_pg
    listed = func.json_each(type_coerce(types, JSON)).table_valued("value")
    return exists().select_from(listed).where(listed.c.value == event_type)


def _recent_nudges(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> Any:
    """Each not-resting member's last ``unanswered_nudges`` nudges since their last rest began,
    for the members whose last that many have all closed and who did not engage today (they
    would recover at once), with whether each was answered."""
    n = policy.unanswered_nudges
    a = actions.c
    tag = member_tags.alias("tag")
    ranked = (
        select(
            a.member_pk,
            a.response_types,
            a.response_from,
            a.response_until,
            func.row_number()
            .over(
                partition_by=a.member_pk,
                order_by=(a.as_of.desc(), a.response_until.desc(), a.action_id.desc()),
            )
            .label("rn"),
        )
        .select_from(
            actions.outerjoin(
                tag,
                and_(
                    tag.c.member_pk == a.member_pk,
                    tag.c.tag == policy.fatigue_tag,
                    tag.c.source == SYSTEM,
                ),
            )
        )
        .where(
            a.holdout == false(),
            a.state.in_(COUNTED_STATES),
            a.as_of <= as_of,
            or_(tag.c.added_on.is_(None), a.as_of >= tag.c.added_on),
            or_(
                tag.c.member_pk.is_(None),
                and_(tag.c.expires_on.is_not(None), tag.c.expires_on < as_of),
            ),
        )
        .subquery("ranked")
    )
    last = select(ranked).where(ranked.c.rn <= n).subquery("last")
    today = day_start(as_of, zone)
    qualified = (
        select(last.c.member_pk)
        .group_by(last.c.member_pk)
        .having(func.count() == n, func.max(last.c.response_until) <= as_of_end)
        .subquery("qualified")
    )
    answered = exists().where(
        events.c.member_pk == last.c.member_pk,
        events.c.occurred_at >= last.c.response_from,
        events.c.occurred_at < last.c.response_until,
        events.c.occurred_at < as_of_end,
        _lists_type(connection, last.c.response_types, events.c.type),
    )
    return (
        select(
            last.c.member_pk,
            last.c.response_until,
            case((answered, 1), else_=0).label("responded"),
        )
        .select_from(last.join(qualified, qualified.c.member_pk == last.c.member_pk))
        .where(~_engaged(last.c.member_pk, today, as_of_end))
        .order_by(last.c.member_pk, last.c.rn)
    )


def _tag(connection: Connection, policy: Policy, member_pks: list[int], as_of: date) -> None:
    values = {"added_on": as_of, "expires_on": rest_until(as_of, policy.rest_days)}
    rows = [
        {"member_pk": pk, "tag": policy.fatigue_tag, "source": SYSTEM, **values}
        for pk in member_pks
    ]
    # One row per member and tag: a rest that ended is restarted in place.
    statement: Any
    if connection.dialect.name == "postgresql":
        pg = postgresql.insert(member_tags)
        statement = pg.on_conflict_do_update(
            index_elements=["member_pk", "tag", "source"],
            set_={"added_on": pg.excluded.added_on, "expires_on": pg.excluded.expires_on},
        )
    else:
        lite = sqlite.insert(member_tags)
        statement = lite.on_conflict_do_update(
            index_elements=["member_pk", "tag", "source"],
            set_={"added_on": lite.excluded.added_on, "expires_on": lite.excluded.expires_on},
        )
    for start in range(0, len(rows), 5_000):
        connection.execute(statement, rows[start : start + 5_000])


def tag_fatigued(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> int:
    """Tag (and so rest) every member whose recent nudges all went unanswered."""
    nudges: dict[int, list[Nudge]] = defaultdict(list)
    for member_pk, until, responded in connection.execute(
        _recent_nudges(connection, policy, as_of, as_of_end, zone)
    ):
        nudges[member_pk].append(Nudge(int(until), bool(responded)))
    fatigued = sorted(
        pk
        for pk, recent in nudges.items()
        if is_fatigued(recent, policy.unanswered_nudges, as_of_end)
    )
    if fatigued:
        _tag(connection, policy, fatigued, as_of)
    return len(fatigued)


def update_fatigue(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> FatigueResult:
    """Recover, then tag, as of the end of business day ``as_of`` (in ``zone``)."""
    recovered = recover(connection, policy, as_of, as_of_end, zone)
    tagged = tag_fatigued(connection, policy, as_of, as_of_end, zone)
    return FatigueResult(tagged=tagged, recovered=recovered)
