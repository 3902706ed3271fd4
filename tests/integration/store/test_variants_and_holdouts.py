"""Stored plans on SQLite and PostgreSQL: each action records its variant, and a held-out
member is "as if the campaign did not exist that night" — free for a lower-priority campaign,
also when the night is planned again from the store, and not counted by frequency caps."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from night.plan import plan_stored_night
from planning.planner import is_held_out, variant_for
from store.actions import list_actions, store_plan
from store.schema import actions
from tests.integration.community import DAY, Person, insert_people
from tests.integration.store.test_plan_store import (
    _NOW,
    AS_OF,
    END,
    PARIS,
    campaign,
    campaign_set,
    policy,
    purchase,
    refresh,
)


def test_actions_record_their_variant(engine: sa.Engine) -> None:
    people = [Person(f"m{i:03d}", None, [purchase(END - 5 * DAY)]) for i in range(120)]
    with engine.begin() as connection:
        insert_people(connection, people)
    refresh(engine, AS_OF)
    ab = campaign(
        "ab",
        eligibility={"once_per_member": True, "holdout": {"percent": 20, "salt": "s"}},
        variants=[{"id": "plain"}, {"id": "bold", "subject": "Now!"}],
    )
    with engine.begin() as connection:
        night = plan_stored_night(connection, campaign_set([ab]), AS_OF, END, PARIS)
        store_plan(connection, night.plan, AS_OF, END, [ab], now=_NOW)
        rows = list_actions(connection, AS_OF)
    assert len(rows) == 120
    ids = {p.member_id for p in people}
    assert len(ids) == 120
    for row in rows:
        if row["holdout"]:
            assert row["variant"] is None
        else:
            member = next(
                a for a in night.plan.campaigns[0].actions if a.action_id == row["action_id"]
            )
            expected = variant_for(ab, member.member_id)
            assert expected is not None and row["variant"] == expected.id
    assert {r["variant"] for r in rows} == {None, "plain", "bold"}


def test_a_held_out_member_stays_free_for_lower_priority_campaigns(engine: sa.Engine) -> None:
    member = next(f"m{i:03d}" for i in range(200) if is_held_out("s", "high", f"m{i:03d}", 50))
    people = [Person(member, None, [purchase(END - 5 * DAY)])]
    with engine.begin() as connection:
        insert_people(connection, people)
    refresh(engine, AS_OF)
    high = campaign(
        "high",
        priority=10,
        eligibility={"once_per_member": True, "holdout": {"percent": 50, "salt": "s"}},
    )
    low = campaign("low", eligibility={"cooldown": "1d"})
    the_set = campaign_set([high, low], policy(frequency_caps=[{"max": 1, "per": "7d"}]))
    with engine.begin() as connection:
        night = plan_stored_night(connection, the_set, AS_OF, END, PARIS)
        assert [c.outcomes for c in night.plan.campaigns] == [{1: "holdout"}, {1: "selected"}]
        store_plan(connection, night.plan, AS_OF, END, [high, low], now=_NOW)
        # Planned again from the store (a re-run of the night): the stored held-out action
        # takes no one, and the stored nudge of `low` is what the member has tonight.
        again = plan_stored_night(connection, the_set, AS_OF, END, PARIS)
        assert store_plan(connection, again.plan, AS_OF, END, [high, low], now=_NOW) == 0
        states = {(r["campaign_id"], r["state"]) for r in list_actions(connection, AS_OF)}
    assert states == {("high", "held_out"), ("low", "planned")}
    # Frequency caps (1 in 7 days) count that nudge of `low` the next night, never the
    # held-out action: a member with only held-out history stays under the cap.
    tomorrow = AS_OF + timedelta(days=1)
    refresh(engine, tomorrow)
    fresh = campaign("fresh")
    capped = campaign_set([fresh], policy(frequency_caps=[{"max": 1, "per": "7d"}]))
    with engine.begin() as connection:
        later = plan_stored_night(connection, capped, tomorrow, END + DAY, PARIS)
        assert later.plan.campaigns[0].outcomes == {1: "frequency_cap"}
        connection.execute(sa.delete(actions).where(actions.c.campaign_id == "low"))
        later = plan_stored_night(connection, capped, tomorrow, END + DAY, PARIS)
        assert later.plan.campaigns[0].outcomes == {1: "selected"}
