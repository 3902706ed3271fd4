"""The fatigue SQL decides as the pure rule does: for drawn nudge histories (windows open and
closed, held-out and failed actions, responses at the windows' edges, rests running and
over), ``store.fatigue.fatigued_members`` selects exactly the members
``audience.fatigue.is_fatigued`` accepts, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from audience.fatigue import Nudge, is_fatigued
from nudgeflow.timeutil import day_end, day_start
from store.fatigue import NOT_ENGAGEMENT, fatigued_members
from store.guard_facts import COUNTED_STATES
from store.schema import actions, events, member_tag_history, member_tags, members
from tests.integration.store.test_plan_store import PARIS, policy

D = date(2026, 3, 29)  # the night Paris moves to summer time: a 23-hour business day
END = day_end(D, PARIS)
TODAY = day_start(D, PARIS)
DAY = 86_400
TYPES = (("email_clicked",), ("purchase", "email_clicked"), ("email_delivered",))
EVENT_TYPES = ("email_clicked", "purchase", "login", "email_delivered")
SETTINGS = settings(
    deadline=None, max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass(frozen=True)
class Drawn:
    night: int  # days before D it was planned
    window: int  # response window in days
    state: str
    holdout: bool
    types: tuple[str, ...]

    @property
    def as_of(self) -> date:
        return D - timedelta(days=self.night)

    @property
    def start(self) -> int:
        return day_end(self.as_of, PARIS)

    @property
    def until(self) -> int:
        return self.start + self.window * DAY


@dataclass(frozen=True)
class History:
    nudges: list[Drawn]
    events: list[tuple[str, int]]
    rest: tuple[int, int] | None  # (days before D it began, days before D it ended)


@st.composite
def histories(draw: st.DrawFn) -> History:
    nudges = draw(
        st.lists(
            st.builds(
                Drawn,
                night=st.integers(0, 12),
                window=st.integers(1, 5),
                state=st.sampled_from(["sent", "sent", "sent", "planned", "failed"]),
                holdout=st.sampled_from([False, False, False, True]),
                types=st.sampled_from(TYPES),
            ),
            max_size=10,
            unique_by=lambda n: n.night,
        )
    )
    # Responses anywhere in the last fortnight, and on the edges of the drawn windows.
    edges = [t for n in nudges for t in (n.start - 1, n.start, n.until - 1, n.until)]
    instants = st.integers(END - 14 * DAY, END) | (
        st.sampled_from(edges) if edges else st.nothing()
    )
    found = draw(st.lists(st.tuples(st.sampled_from(EVENT_TYPES), instants), max_size=4))
    rest = draw(
        st.none() | st.tuples(st.integers(3, 12), st.integers(-5, 2)).filter(lambda r: r[1] < r[0])
    )
    return History(nudges, found, rest)


def _reference(history: History, n: int) -> bool:
    """The store's filters (resting; since the last rest began), then the pure rule."""
    began: date | None = None
    if history.rest is not None:
        began, ended = D - timedelta(days=history.rest[0]), D - timedelta(days=history.rest[1])
        if ended >= D:
            return False
    nudges = [
        x
        for x in history.nudges
        if not x.holdout and x.state in COUNTED_STATES and (began is None or x.as_of >= began)
    ]
    nudges.sort(key=lambda x: (x.as_of, x.until), reverse=True)

    def answered(x: Drawn) -> bool:
        return any(t in x.types and x.start <= at < min(x.until, END) for t, at in history.events)

    engaged_today = any(t not in NOT_ENGAGEMENT and TODAY <= at < END for t, at in history.events)
    return not engaged_today and is_fatigued([Nudge(x.until, answered(x)) for x in nudges], n, END)


def _store(engine: sa.Engine, community: list[History]) -> None:
    now = datetime(2026, 1, 1)
    member_rows: list[dict[str, Any]] = []
    action_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    for pk, history in enumerate(community, start=1):
        member_rows.append(
            {
                "id": pk,
                "member_id": f"m{pk}",
                "email": f"m{pk}@example.com",
                "email_opt_in": True,
                "row_hash": "x",
                "created_at": now,
                "updated_at": now,
            }
        )
        for x in history.nudges:
            action_rows.append(
                {
                    "action_id": f"a{pk:03d}n{x.night:03d}",
                    "campaign_id": "c",
                    "member_pk": pk,
                    "occurrence": x.as_of.isoformat(),
                    "as_of": x.as_of,
                    "state": "held_out" if x.holdout else x.state,
                    "holdout": x.holdout,
                    "cost_minor": 0,
                    "template": "t",
                    "response_types": list(x.types),
                    "response_from": x.start,
                    "response_until": x.until,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        event_rows += [
            {"event_id": f"e{pk}.{i}", "member_pk": pk, "type": t, "occurred_at": at}
            for i, (t, at) in enumerate(history.events)
        ]
        if history.rest is not None:
            began, ended = history.rest
            tag_rows.append(
                {
                    "member_pk": pk,
                    "tag": "nudge-fatigued",
                    "source": "system",
                    "added_on": D - timedelta(days=began),
                    "expires_on": D - timedelta(days=ended),
                }
            )
    with engine.begin() as connection:
        for table in (member_tag_history, actions, events, member_tags, members):
            connection.execute(table.delete())
        for table, rows in (
            (members, member_rows),
            (actions, action_rows),
            (events, event_rows),
            (member_tags, tag_rows),
        ):
            if rows:
                connection.execute(table.insert(), rows)


@settings(SETTINGS)
@example(  # a daily nudge with a one-day window, six nights running; tonight's still open
    community=[
        History([Drawn(k, 1, "sent", False, TYPES[0]) for k in range(7)], [], None),
    ],
    n=6,
)
@example(  # three closed and unanswered, but a newer nudge, still open, was answered
    community=[
        History(
            [Drawn(k, 1, "sent", False, TYPES[2]) for k in (3, 4, 5)]
            + [Drawn(2, 5, "sent", False, TYPES[0])],
            [("email_clicked", day_end(D - timedelta(days=2), PARIS) + 3600)],
            None,
        ),
    ],
    n=3,
)
@given(community=st.lists(histories(), min_size=1, max_size=6), n=st.integers(1, 4))
def test_fatigued_members_agrees_with_is_fatigued(
    engine: sa.Engine, community: list[History], n: int
) -> None:
    _store(engine, community)
    with engine.connect() as connection:
        query = fatigued_members(
            connection, policy(fatigue={"unanswered_nudges": n}), D, END, PARIS
        )
        selected = set(connection.scalars(query))
    expected = {pk for pk, history in enumerate(community, start=1) if _reference(history, n)}
    event(f"{len(expected)} of {len(community)} fatigued")
    assert selected == expected
