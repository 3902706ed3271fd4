"""``night.explain`` over a rehearsed night, on SQLite and PostgreSQL: every guard's reason
with the facts the planner kept, the audience and trigger misses in words, and nothing
written."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from night.explain import explain_member
from night.plan import rehearse
from nudgeflow.errors import NotFoundError
from store.schema import actions, member_tags, profiles
from tests.integration.community import DAY, Person, insert_people
from tests.integration.store.test_plan_store import (
    AS_OF,
    END,
    PARIS,
    add_action,
    campaign,
    campaign_set,
    policy,
    purchase,
    refresh,
    set_member,
)

GIFT = {"kind": "gift", "item": "mug", "item_cost": "5.00 USD"}


def _tagged(name: str, *tags: str) -> Person:
    return Person(name, None, [purchase(END - 5 * DAY)], tags=frozenset(tags))


def test_why_gives_each_guard_with_its_facts(engine: sa.Engine) -> None:
    names = ["optout", "unsub", "rested", "got", "stored", "vip", "busy", "fine"]
    people = [_tagged(n) for n in names]
    people[1].events.append(EventFact("unsubscribed", END - 2 * DAY))
    people[5] = _tagged("vip", "vip")
    people += [_tagged(f"g{i}", "gift") for i in (1, 2, 3)]
    people += [_tagged(f"l{i}", "lim") for i in (1, 2)]
    people.append(Person("nobody", None, [EventFact("login", END - DAY)]))
    with engine.begin() as connection:
        keys = insert_people(connection, people)
        connection.execute(
            sa.insert(member_tags).values(
                member_pk=keys["rested"],
                tag="nudge-fatigued",
                source="system",
                added_on=AS_OF - timedelta(days=3),
                expires_on=AS_OF + timedelta(days=10),
            )
        )
        add_action(connection, "main", keys["got"], AS_OF - timedelta(days=20), occurrence="once")
        add_action(connection, "other", keys["stored"], AS_OF)
        for days in (1, 2):
            add_action(connection, "x", keys["busy"], AS_OF - timedelta(days=days), state="sent")
    set_member(engine, keys["optout"], email_opt_in=False)
    refresh(engine, AS_OF - timedelta(days=1))
    campaigns = [
        campaign("main", priority=5, audience={"stage": "adopter"}),
        campaign("top", priority=10, audience={"tags": {"all_of": ["vip"]}}),
        campaign(
            "gift",
            priority=7,
            audience={"tags": {"all_of": ["gift"]}},
            reward=GIFT,
            budget={"total": "10.00 USD"},
        ),
        campaign(
            "limited",
            priority=7,
            audience={"tags": {"all_of": ["lim"]}},
            eligibility={"once_per_member": True, "max_per_run": 1},
        ),
        campaign(
            "review",
            audience={"stage": "adopter"},
            trigger={"on": "event", "types": ["review_posted"]},
        ),
        campaign("off", enabled=False),
    ]
    the_set = campaign_set(campaigns, policy(frequency_caps=[{"max": 2, "per": "7d"}]))
    with engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.count()).select_from(actions)).scalar()

    def why(member: str) -> dict[str, str]:
        with rehearse(engine, the_set, PARIS, "USD", AS_OF) as rehearsal:
            return dict(explain_member(rehearsal, member))

    main = {name: why(name)["main"] for name in names}
    assert main == {
        "optout": "excluded: no consent (opted out of email)",
        "unsub": "excluded: no consent (unsubscribed on 2026-03-30)",
        "rested": "excluded: fatigued (resting after unanswered nudges until 2026-04-10)",
        "got": "excluded: already received on 2026-03-11 (once per member)",
        "stored": "excluded: lower priority (other already has the member tonight)",
        "vip": "excluded: lower priority (top, priority 10, took the member tonight)",
        "busy": "excluded: frequency cap (2 nudges in the last 7 days)",
        "fine": "selected: no reward, email thanks",
    }
    g3 = why("g3")
    assert g3["gift"] == (
        "excluded: budget spent (10.00 USD was left before tonight, one reward costs "
        "5.00 USD, 2 selected tonight)"
    )
    assert g3["main"] == "selected: no reward, email thanks"
    g1 = why("g1")
    assert g1["gift"] == "selected: gift: mug, email thanks"
    assert g1["main"] == "excluded: lower priority (gift, priority 7, took the member tonight)"
    assert why("l2")["limited"] == "excluded: max_per_run (1 per night) reached"
    fine = why("fine")
    assert fine["review"] == "not triggered: no review_posted event since 2026-03-31"
    assert fine["top"] == "not in the audience: lacks tag 'vip'"
    assert fine["off"] == "not considered: the campaign is disabled"
    assert list(fine) == [c.id for c in the_set.campaigns]
    nobody = why("nobody")
    assert nobody["main"] == "not in the audience: is in stage (none); the audience is adopter"

    with pytest.raises(NotFoundError, match="no member with member_id 'ghost'"):
        why("ghost")
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(actions)).scalar() == before
        )
        stored = connection.execute(sa.select(profiles.c.as_of).distinct()).scalars().all()
    assert stored == [AS_OF - timedelta(days=1)]  # the rehearsal's refresh was rolled back
