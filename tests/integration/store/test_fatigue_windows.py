"""Fatigue in the store for the members it exists for: nudged more often than their response
window. Only nudges whose window has closed count; tagging and clearing are kept in the
history. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from audience.facts import EventFact
from nudgeflow.timeutil import day_end, day_start
from store.fatigue import FatigueResult, update_fatigue
from store.schema import member_tags
from tests.integration.community import DAY, Person, add_events, insert_people
from tests.integration.store.test_plan_store import PARIS, add_action, policy

D = date(2026, 3, 31)
SIX = policy(fatigue={"unanswered_nudges": 6, "rest_for": "30d"})


def _fatigue(engine: sa.Engine, day: date) -> FatigueResult:
    with engine.begin() as connection:
        return update_fatigue(connection, SIX, day, day_end(day, PARIS), PARIS)


def _daily(engine: sa.Engine, pk: int, nights: list[date], **options: object) -> None:
    """One nudge a night from a daily campaign whose response window is one day."""
    with engine.begin() as connection:
        for night in nights:
            end = day_end(night, PARIS)
            add_action(
                connection,
                "daily",
                pk,
                night,
                response_from=end,
                response_until=end + DAY,
                **options,  # type: ignore[arg-type]
            )


def _nights(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _tagged(engine: sa.Engine) -> dict[int, tuple[date, date]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(member_tags.c.member_pk, member_tags.c.added_on, member_tags.c.expires_on)
        ).all()
    return {pk: (added, expires) for pk, added, expires in rows}


def test_a_daily_nudge_with_a_one_day_window_tags_after_six_unanswered_closed_nudges(
    engine: sa.Engine,
) -> None:
    with engine.begin() as connection:
        keys = insert_people(connection, [Person(n, None) for n in ("six", "five", "clicked")])
    # Tonight's nudge (D) is still inside its window; the six before it have closed.
    _daily(engine, keys["six"], _nights(D - timedelta(days=6), D))
    _daily(engine, keys["five"], _nights(D - timedelta(days=5), D))
    _daily(engine, keys["clicked"], _nights(D - timedelta(days=6), D))
    with engine.begin() as connection:
        # A click inside the window of the oldest of the six closed nudges.
        at = day_end(D - timedelta(days=6), PARIS) + 3600
        add_events(connection, keys, [("clicked", EventFact("email_clicked", at))])

    assert _fatigue(engine, D) == FatigueResult(tagged=1, recovered=0)
    assert _tagged(engine) == {keys["six"]: (D, D + timedelta(days=29))}

    # The next night D's nudges have closed too (D+1's are open): "five" has six closed
    # and unanswered, and "clicked" answered only the seventh most recent.
    tomorrow = D + timedelta(days=1)
    _daily(engine, keys["five"], [tomorrow])
    _daily(engine, keys["clicked"], [tomorrow])
    assert _fatigue(engine, tomorrow) == FatigueResult(tagged=2, recovered=0)
    assert set(_tagged(engine)) == set(keys.values())


def test_a_nudge_inside_its_window_counts_neither_for_nor_against(engine: sa.Engine) -> None:
    names = ("open_unanswered", "long_window", "open_answered")
    with engine.begin() as connection:
        keys = insert_people(connection, [Person(n, None) for n in names])
    six = _nights(D - timedelta(days=6), D - timedelta(days=1))
    _daily(engine, keys["open_unanswered"], six)
    _daily(engine, keys["long_window"], six)
    # Clicks answer none of this member's daily nudges: their rule counts purchases.
    _daily(engine, keys["open_answered"], six, response_types=("purchase",))

    def weekly(connection: sa.Connection, name: str, night: date) -> None:
        end = day_end(night, PARIS)
        add_action(connection, "weekly", keys[name], night, response_until=end + 7 * DAY)

    with engine.begin() as connection:
        weekly(connection, "open_unanswered", D)  # tonight's, open
        weekly(connection, "long_window", D - timedelta(days=5))  # older, and still open
        weekly(connection, "open_answered", D - timedelta(days=3))
        # Answered though its window is still open: the member is engaged, not fatigued.
        # (The click is before today, so "engaged today" is not what spares them.)
        at = day_start(D - timedelta(days=2), PARIS) + 3600
        add_events(connection, keys, [("open_answered", EventFact("email_clicked", at))])
    assert _fatigue(engine, D) == FatigueResult(tagged=2, recovered=0)
    assert set(_tagged(engine)) == {keys["open_unanswered"], keys["long_window"]}


def test_held_out_and_failed_actions_are_not_nudges(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        keys = insert_people(connection, [Person(n, None) for n in ("held", "failed")])
    six = _nights(D - timedelta(days=6), D - timedelta(days=1))
    _daily(engine, keys["held"], six[1:])
    _daily(engine, keys["failed"], six[1:])
    with engine.begin() as connection:
        end = day_end(six[0], PARIS)
        add_action(
            connection,
            "other",
            keys["held"],
            six[0],
            holdout=True,
            state="held_out",
            response_from=end,
            response_until=end + DAY,
        )
        add_action(
            connection,
            "other",
            keys["failed"],
            six[0],
            state="failed",
            response_from=end,
            response_until=end + DAY,
        )
    assert _fatigue(engine, D) == FatigueResult(tagged=0, recovered=0)


def test_tagging_and_clearing_are_kept_in_the_history(engine: sa.Engine) -> None:
    from store.tags import CLEARED, TAGGED, tag_changes, tags_on

    with engine.begin() as connection:
        keys = insert_people(connection, [Person("bob", None, tags=frozenset({"vip"}))])
    bob = keys["bob"]
    _daily(engine, bob, _nights(D - timedelta(days=6), D))
    assert _fatigue(engine, D).tagged == 1
    # He answers two days later: the next night clears the tag, the history keeps both.
    with engine.begin() as connection:
        at = day_start(D + timedelta(days=2), PARIS) + 3600
        add_events(connection, keys, [("bob", EventFact("email_clicked", at))])
    later = D + timedelta(days=2)
    assert _fatigue(engine, later) == FatigueResult(tagged=0, recovered=1)
    assert _tagged(engine)[bob] == (D, D + timedelta(days=1))
    with engine.connect() as connection:
        assert tags_on(connection, bob, D + timedelta(days=1)) == ["nudge-fatigued", "vip"]
        assert tags_on(connection, bob, later) == ["vip"]
        changes = tag_changes(connection, bob)
    assert [(c.change, c.as_of, c.rest_until, c.tag) for c in changes] == [
        (TAGGED, D, D + timedelta(days=29), "nudge-fatigued"),
        (CLEARED, later, None, "nudge-fatigued"),
    ]
    assert changes[0].reason == "6 unanswered nudges in a row"
    # Nothing more happens on a quiet night: no duplicate history.
    assert _fatigue(engine, later) == FatigueResult(tagged=0, recovered=0)
    with engine.connect() as connection:
        assert len(tag_changes(connection, bob)) == 2


def test_an_event_a_nudge_counts_as_its_response_clears_the_tag(engine: sa.Engine) -> None:
    """Recovery is engagement or a response: here a type that is not engagement, but that
    the nudge's response rule counts (its window still open after the tag)."""
    from store.fatigue import recover_fatigued, tag_fatigued

    with engine.begin() as connection:
        keys = insert_people(connection, [Person(n, None) for n in ("ann", "bob")])
    for pk in keys.values():
        _daily(engine, pk, _nights(D - timedelta(days=6), D - timedelta(days=1)))
    end = day_end(D, PARIS)
    with engine.begin() as connection:
        for pk in keys.values():
            add_action(
                connection,
                "weekly",
                pk,
                D,
                response_types=("email_delivered",),
                response_until=end + 7 * DAY,
            )
        assert tag_fatigued(connection, SIX, D, end, PARIS) == 2
        delivered = day_start(D + timedelta(days=1), PARIS) + 60
        add_events(
            connection,
            keys,
            [
                ("ann", EventFact("email_delivered", delivered)),
                # Outside every window, a receipt says nothing.
                ("bob", EventFact("email_delivered", end + 8 * DAY)),
            ],
        )
    night = D + timedelta(days=9)
    with engine.begin() as connection:
        assert recover_fatigued(connection, SIX, night, day_end(night, PARIS), PARIS) == 1
    tags = _tagged(engine)
    assert tags[keys["ann"]] == (D, night - timedelta(days=1))
    assert tags[keys["bob"]] == (D, D + timedelta(days=29))
