"""Fatigue tagging, resting and recovery in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from audience.facts import EventFact
from nudgeflow.timeutil import day_end, day_start
from store.fatigue import FatigueResult, update_fatigue
from store.guard_facts import gather_guards
from store.schema import member_tags
from tests.integration.community import DAY, Person, add_events, insert_people
from tests.integration.store.test_plan_store import PARIS, add_action, campaign, policy, refresh

D = date(2026, 3, 31)
POLICY = policy(fatigue={"unanswered_nudges": 3, "rest_for": "90d"})


def _fatigue(engine: sa.Engine, day: date) -> FatigueResult:
    with engine.begin() as connection:
        return update_fatigue(connection, POLICY, day, day_end(day, PARIS), PARIS)


def _tags(engine: sa.Engine) -> dict[int, tuple[date, date]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                member_tags.c.member_pk, member_tags.c.added_on, member_tags.c.expires_on
            ).where(member_tags.c.tag == "nudge-fatigued", member_tags.c.source == "system")
        ).all()
    return {pk: (added, expires) for pk, added, expires in rows}


def _nudges(engine: sa.Engine, pk: int, days_ago: list[int], **options: object) -> None:
    with engine.begin() as connection:
        for ago in days_ago:
            day = D - timedelta(days=ago)
            add_action(
                connection,
                f"c{ago}",
                pk,
                day,
                response_types=("email_clicked", "purchase"),
                **options,  # type: ignore[arg-type]
            )


def test_unanswered_nudges_tag_and_rest_the_member(engine: sa.Engine) -> None:
    names = ["ignorer", "clicker", "buyer", "late", "open", "two", "held", "engaged", "failed"]
    with engine.begin() as connection:
        keys = insert_people(connection, [Person(n, None) for n in names])
    for name in names:
        if name == "two":
            _nudges(engine, keys[name], [30, 20])
        elif name == "open":
            _nudges(engine, keys[name], [30, 20, 3])  # the last window closes after D
        elif name == "held":
            _nudges(engine, keys[name], [30, 20, 10], holdout=True, state="held_out")
        elif name == "failed":
            _nudges(engine, keys[name], [30, 20, 10], state="failed")
        else:
            _nudges(engine, keys[name], [30, 20, 10])
    end = day_end(D, PARIS)
    with engine.begin() as connection:
        add_events(
            connection,
            keys,
            [
                # Inside the window of the nudge planned 20 days ago: a response.
                (
                    "clicker",
                    EventFact("email_clicked", day_end(D - timedelta(days=20), PARIS) + 60),
                ),
                (
                    "buyer",
                    EventFact("purchase", day_end(D - timedelta(days=10), PARIS) + DAY, 5, "USD"),
                ),
                # A click long after the window closed answers nothing.
                (
                    "late",
                    EventFact("email_clicked", day_end(D - timedelta(days=30), PARIS) + 8 * DAY),
                ),
                # Engagement today would end a rest at once: no tag.
                ("engaged", EventFact("login", end - 3600)),
                # Delivery receipts are not engagement.
                ("ignorer", EventFact("email_delivered", end - 3600)),
            ],
        )
    assert _fatigue(engine, D) == FatigueResult(tagged=2, recovered=0)
    assert _tags(engine) == {
        keys["ignorer"]: (D, D + timedelta(days=89)),
        keys["late"]: (D, D + timedelta(days=89)),
    }
    # The same night again changes nothing.
    assert _fatigue(engine, D) == FatigueResult(tagged=0, recovered=0)

    def fatigued_on(day: date) -> set[str]:
        refresh(engine, day)
        found = {"c": list(keys.values())}
        with engine.connect() as connection:
            states, _ = gather_guards(
                connection, [campaign("c")], found, POLICY, day, day_end(day, PARIS)
            )
        return {s.member_id for s in states.values() if s.fatigued}

    # Tagged after D's plan: rested from the next night through D+89.
    assert fatigued_on(D) == set()
    assert fatigued_on(D + timedelta(days=1)) == {"ignorer", "late"}
    assert fatigued_on(D + timedelta(days=89)) == {"ignorer", "late"}
    assert fatigued_on(D + timedelta(days=90)) == set()


def test_any_engagement_ends_the_rest_and_old_nudges_do_not_count_again(
    engine: sa.Engine,
) -> None:
    with engine.begin() as connection:
        keys = insert_people(connection, [Person("ann", None), Person("bob", None)])
    for pk in keys.values():
        _nudges(engine, pk, [30, 20, 10])
    assert _fatigue(engine, D).tagged == 2

    later = D + timedelta(days=5)
    with engine.begin() as connection:
        add_events(
            connection,
            keys,
            [
                ("ann", EventFact("community_post", day_start(D + timedelta(days=3), PARIS))),
                ("bob", EventFact("unsubscribed", day_start(D + timedelta(days=3), PARIS))),
            ],
        )
    assert _fatigue(engine, later) == FatigueResult(tagged=0, recovered=1)
    tags = _tags(engine)
    assert tags[keys["ann"]] == (D, later - timedelta(days=1))  # rest over, start kept
    assert tags[keys["bob"]] == (D, D + timedelta(days=89))
    # The nudges from before the rest do not tag ann again.
    assert _fatigue(engine, later + timedelta(days=1)) == FatigueResult(tagged=0, recovered=0)

    # Three new unanswered nudges after the rest began tag her again, in place.
    _nudges(engine, keys["ann"], [-10, -20, -30])
    again = D + timedelta(days=40)
    assert _fatigue(engine, again) == FatigueResult(tagged=1, recovered=0)
    assert _tags(engine)[keys["ann"]] == (again, again + timedelta(days=89))
    with engine.connect() as connection:
        count = connection.execute(
            sa.select(sa.func.count())
            .select_from(member_tags)
            .where(member_tags.c.member_pk == keys["ann"])
        ).scalar_one()
    assert count == 1
