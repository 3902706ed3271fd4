"""The fatigue tag in the store, set-based: recovery before a night's plan, tagging after
its dispatch.

**Recovery** (``recover_fatigued``) runs before the plan, so a member who answered is
selectable that same night: a resting member with a response since the start of the day
they were tagged gets their rest ended (``expires_on`` becomes the day before tonight). A
response is any engagement event (anything but the receipts and withdrawals in
``NOT_ENGAGEMENT``) or an event that one of the member's nudges counts as answering it.

**Tagging** (``tag_fatigued``) runs after dispatch: a member who is not resting is tagged,
and rests through ``audience.fatigue.rest_until``, when the ``unanswered_nudges`` most
recent of their nudges whose response window has closed (since their last rest began) all
went unanswered, and no newer nudge, closed or still open, has been answered. Nudges still
inside their window are skipped: they count neither as unanswered nor as a reason to wait,
so a member nudged every day with a one-day window is rested like any other. Held-out
actions are not nudges. One query decides for every member at once (window functions that
run on SQLite and PostgreSQL); it decides as ``audience.fatigue.is_fatigued`` does, and
``tests/integration/store/test_fatigue_agrees.py`` holds it to that reference. Members who
engaged today are left alone: the next night's recovery would clear the tag at once.

There is one ``member_tags`` row per member for the tag (source ``system``). Ending a rest
sets its ``expires_on`` to the day before instead of deleting the row: ``added_on`` has to
survive as "when the last rest began", or the unanswered nudges from before it would tag the
member again the very next night. Every tag and every clearing is also appended to
``member_tag_history`` (``store.tags``), which keeps what the single row forgets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    and_,
    bindparam,
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

from audience.fatigue import rest_until
from domain.campaign import Policy
from nudgeflow.timeutil import day_start
from store.guard_facts import COUNTED_STATES, SYSTEM
from store.schema import actions, events, member_tags
from store.tags import CLEARED, TAGGED, TagChange, record_tag_changes

# Events that say nothing about interest: delivery receipts, and consent withdrawn or restored.
NOT_ENGAGEMENT = (
    "email_delivered",
    "email_bounced",
    "email_spam_report",
    "unsubscribed",
    "consent_restored",
)
RESPONDED = "responded or engaged since the rest began"
BATCH = 5_000


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


def lists_type(connection: Connection, types: Any, event_type: Any) -> ColumnElement[bool]:
    """Whether the JSON array ``types`` (an action's response types) holds ``event_type``."""
    if connection.dialect.name == "postgresql":
        listed_pg: ColumnElement[bool] = type_coerce(types, JSONB).has_key(event_type)
        return listed_pg
    listed = func.json_each(type_coerce(types, JSON)).table_valued("value")
    return exists().select_from(listed).where(listed.c.value == event_type)


def _nudges() -> ColumnElement[bool]:
    """Actions that are nudges: sent or on their way (held-out members were never nudged)."""
    return and_(actions.c.holdout == false(), actions.c.state.in_(COUNTED_STATES))


def _responded(
    connection: Connection, member_pk: ColumnElement[Any], since: ColumnElement[Any], until: int
) -> Any:
    """An engagement event, or an event one of the member's nudges counts as its response,
    in ``[since, until)``."""
    e, a = events.c, actions.c
    answers_a_nudge = exists().where(
        a.member_pk == e.member_pk,
        _nudges(),
        a.response_from <= e.occurred_at,
        a.response_until > e.occurred_at,
        lists_type(connection, a.response_types, e.type),
    )
    return exists().where(
        e.member_pk == member_pk,
        e.occurred_at >= since,
        e.occurred_at < until,
        or_(e.type.not_in(NOT_ENGAGEMENT), answers_a_nudge),
    )


def recover_fatigued(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> int:
    """End the rest of every resting member who responded since the day they were tagged,
    so that tonight's plan may select them; record each clearing."""
    tagged = and_(_fatigue_tag(policy), _resting(as_of), member_tags.c.added_on.is_not(None))
    days = connection.execute(select(member_tags.c.added_on).where(tagged).distinct()).scalars()
    starts = {day: day_start(day, zone) for day in days}
    if not starts:
        return 0
    # A few distinct tag dates: map each to the instant its business day began, in SQL.
    since = case(starts, value=member_tags.c.added_on)
    recovered = list(
        connection.execute(
            select(member_tags.c.member_pk)
            .where(tagged, _responded(connection, member_tags.c.member_pk, since, as_of_end))
            .order_by(member_tags.c.member_pk)
        ).scalars()
    )
    end = (
        update(member_tags)
        .where(_fatigue_tag(policy), member_tags.c.member_pk == bindparam("b_pk"))
        .values(expires_on=as_of - timedelta(days=1))
    )
    for start in range(0, len(recovered), BATCH):
        connection.execute(end, [{"b_pk": pk} for pk in recovered[start : start + BATCH]])
    record_tag_changes(
        connection,
        [TagChange(pk, policy.fatigue_tag, SYSTEM, CLEARED, as_of, RESPONDED) for pk in recovered],
    )
    return len(recovered)


def fatigued_members(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> Any:
    """The query of every member to tag tonight (one column, ``member_pk``, ascending)."""
    n = policy.unanswered_nudges
    a = actions.c
    tag = member_tags.alias("tag")
    closed = case((a.response_until <= as_of_end, 1), else_=0)
    newest_first = (a.as_of.desc(), a.response_until.desc(), a.action_id.desc())
    nudges = (
        select(
            a.member_pk,
            a.response_types,
            a.response_from,
            a.response_until,
            closed.label("closed"),
            # Closed nudges up to and including this one, newest first.
            func.sum(closed)
            .over(partition_by=a.member_pk, order_by=newest_first, rows=(None, 0))
            .label("closed_so_far"),
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
            _nudges(),
            a.as_of <= as_of,
            # Since the last rest began, for members not resting tonight.
            or_(tag.c.added_on.is_(None), a.as_of >= tag.c.added_on),
            or_(
                tag.c.member_pk.is_(None),
                and_(tag.c.expires_on.is_not(None), tag.c.expires_on < as_of),
            ),
        )
        .subquery("nudges")
    )
    answered = exists().where(
        events.c.member_pk == nudges.c.member_pk,
        events.c.occurred_at >= nudges.c.response_from,
        events.c.occurred_at < nudges.c.response_until,
        events.c.occurred_at < as_of_end,
        lists_type(connection, nudges.c.response_types, events.c.type),
    )
    # The nudges that decide: newest first, up to and including the n-th closed one. (A
    # second window for each member's total of closed nudges would filter earlier, but
    # costs SQLite a second pass over every nudge: slower than asking a few more EXISTS.)
    deciding = (
        select(
            nudges.c.member_pk,
            nudges.c.closed,
            case((answered, 1), else_=0).label("answered"),
        )
        .where(nudges.c.closed_so_far - nudges.c.closed < n)
        .subquery("deciding")
    )
    unanswered = (
        select(deciding.c.member_pk)
        .group_by(deciding.c.member_pk)
        .having(func.sum(deciding.c.closed) == n, func.max(deciding.c.answered) == 0)
        .subquery("unanswered")
    )
    today = day_start(as_of, zone)
    return (
        select(unanswered.c.member_pk)
        .where(~_engaged(unanswered.c.member_pk, today, as_of_end))
        .order_by(unanswered.c.member_pk)
    )


def _tag(connection: Connection, policy: Policy, member_pks: list[int], as_of: date) -> None:
    until = rest_until(as_of, policy.rest_days)
    rows = [
        {
            "member_pk": pk,
            "tag": policy.fatigue_tag,
            "source": SYSTEM,
            "added_on": as_of,
            "expires_on": until,
        }
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
    for start in range(0, len(rows), BATCH):
        connection.execute(statement, rows[start : start + BATCH])
    reason = f"{policy.unanswered_nudges} unanswered nudges in a row"
    record_tag_changes(
        connection,
        [
            TagChange(pk, policy.fatigue_tag, SYSTEM, TAGGED, as_of, reason, until)
            for pk in member_pks
        ],
    )


def tag_fatigued(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> int:
    """Tag (and so rest) every member whose recent closed nudges all went unanswered."""
    fatigued = list(
        connection.execute(fatigued_members(connection, policy, as_of, as_of_end, zone)).scalars()
    )
    if fatigued:
        _tag(connection, policy, fatigued, as_of)
    return len(fatigued)


def update_fatigue(
    connection: Connection, policy: Policy, as_of: date, as_of_end: int, zone: ZoneInfo
) -> FatigueResult:
    """Both halves at once, recovery then tagging, as of the end of business day ``as_of``
    (the night runs them apart, around its plan and dispatch: ``night.fatigue``)."""
    recovered = recover_fatigued(connection, policy, as_of, as_of_end, zone)
    tagged = tag_fatigued(connection, policy, as_of, as_of_end, zone)
    return FatigueResult(tagged=tagged, recovered=recovered)
