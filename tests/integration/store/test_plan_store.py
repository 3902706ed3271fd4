"""The store side of the nightly plan: candidates, guard facts, budgets and stored actions,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from audience.criteria import explain_profile
from audience.evaluate import evaluate
from audience.facts import EventFact
from audience.lifecycle import Lifecycle
from domain.campaign import Campaign, Policy
from domain.keys import action_id
from domain.plan import MemberState, PriorAction
from night.plan import plan_stored_night
from nudgeflow.timeutil import day_end, day_start, to_epoch
from planning.campaign_files import CampaignSet
from planning.campaign_spec import CampaignSpec, PolicySpec
from planning.compile import compile_campaign, compile_policy
from planning.lifecycle_file import load_lifecycle
from store.actions import list_actions, store_plan
from store.audience_sql import anniversary_intervals, select_candidates
from store.guard_facts import StoredBudgets, gather_guards
from store.member_facts import member_facts, profile_facts
from store.profiles import refresh_profiles
from store.runs import finish_run, start_run
from store.schema import actions, member_tags, members
from tests.integration.community import (
    DAY,
    Person,
    add_events,
    insert_people,
    random_community,
)

ROOT = Path(__file__).resolve().parents[3]
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
_NOW = datetime(2026, 1, 1)


# --- helpers shared with the fatigue and flow tests ----------------------------------------


def lifecycle() -> Lifecycle:
    return load_lifecycle(ROOT / "campaigns")


def campaign(campaign_id: str, **spec: Any) -> Campaign:
    """A compiled campaign; ``spec`` overrides the keys of a minimal schedule campaign."""
    document: dict[str, Any] = {
        "id": campaign_id,
        "name": campaign_id,
        "audience": {"stage": ["adopter", "loyalist", "advocate"]},
        "trigger": {"on": "schedule"},
        "eligibility": {"once_per_member": True},
        "email": {"template": "thanks", "subject": "Thanks"},
        **spec,
    }
    return compile_campaign(CampaignSpec.model_validate(document), f"{campaign_id}.yaml")


def policy(**spec: Any) -> Policy:
    return compile_policy(PolicySpec.model_validate(spec))


def campaign_set(campaigns: list[Campaign], the_policy: Policy | None = None) -> CampaignSet:
    ordered = tuple(sorted(campaigns, key=lambda c: (-c.priority, c.id)))
    return CampaignSet(lifecycle(), the_policy or policy(), ordered, {})


def refresh(engine: sa.Engine, as_of: date, zone: ZoneInfo = PARIS) -> None:
    with engine.begin() as connection:
        refresh_profiles(connection, lifecycle(), as_of, day_end(as_of, zone), "USD")


def complete_run(engine: sa.Engine, as_of: date) -> None:
    with engine.begin() as connection:
        finish_run(
            connection,
            start_run(connection, as_of, "nightly", None, now=_NOW),
            "completed",
            now=_NOW,
        )


def candidates(
    engine: sa.Engine,
    campaigns: list[Campaign],
    as_of: date,
    previous: date | None = None,
    zone: ZoneInfo = PARIS,
) -> dict[str, list[int]]:
    with engine.connect() as connection:
        return select_candidates(connection, campaigns, as_of, day_end(as_of, zone), previous, zone)


def set_member(engine: sa.Engine, member_pk: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(members).where(members.c.id == member_pk).values(**values))


def purchase(at: int) -> EventFact:
    return EventFact("purchase", at, 1000, "USD")


def add_action(
    connection: sa.Connection,
    campaign_id: str,
    member_pk: int,
    as_of: date,
    *,
    state: str = "planned",
    holdout: bool = False,
    cost: int = 0,
    occurrence: str | None = None,
    response_types: tuple[str, ...] = ("email_clicked",),
    response_from: int | None = None,
    response_until: int | None = None,
) -> None:
    start = response_from if response_from is not None else day_end(as_of, PARIS)
    connection.execute(
        sa.insert(actions).values(
            action_id=f"{campaign_id}-{member_pk}-{occurrence or as_of.isoformat()}",
            campaign_id=campaign_id,
            member_pk=member_pk,
            occurrence=occurrence or as_of.isoformat(),
            as_of=as_of,
            state=state,
            holdout=holdout,
            reward=None,
            cost_minor=cost,
            currency="USD" if cost else None,
            template="thanks",
            response_types=list(response_types),
            response_from=start,
            response_until=response_until if response_until is not None else start + 7 * DAY,
            created_at=_NOW,
            updated_at=_NOW,
        )
    )


# --- candidates: audiences agree with the pure reference ----------------------------------

AS_OF = date(2026, 3, 31)
END = day_end(AS_OF, PARIS)

AUDIENCES: list[dict[str, Any]] = [
    {"stage": "adopter"},
    {"stage": ["loyalist", "advocate"], "last_purchase": {"within": "90d"}},
    {"rfm": {"segment": ["champions", "loyal"]}},
    {"score": {"min": 20, "max": 60}},
    {"stage": "adopter", "country": ["US"], "events": {"type": "review_posted", "min": 1}},
    {"any_of": [{"spend": {"min": "50.00 USD"}}, {"tags": {"all_of": ["vip"]}}]},
    {"stage": "loyalist", "entered_stage": {"within": "30d"}},
]


def test_schedule_audiences_agree_with_explain_profile_and_evaluate(engine: sa.Engine) -> None:
    people = random_community(seed=5, size=160, end=END)
    for person in people[::7]:
        person.tags = frozenset({"vip"})
    with engine.begin() as connection:
        keys = insert_people(connection, people)
    refresh(engine, AS_OF - timedelta(days=20))
    refresh(engine, AS_OF)
    campaigns = [campaign(f"c{i}", audience=a) for i, a in enumerate(AUDIENCES)]
    got = candidates(engine, campaigns, AS_OF)

    with engine.connect() as connection:
        expected: dict[str, list[int]] = {c.id: [] for c in campaigns}
        for person in people:
            pk = keys[person.member_id]
            profile = profile_facts(connection, pk)
            assert profile is not None
            facts = member_facts(connection, pk, AS_OF, END)
            for c in campaigns:
                if explain_profile(c.audience, profile, AS_OF, END) is None and evaluate(
                    c.audience.rule, facts, END
                ):
                    expected[c.id].append(pk)
    assert got == {c: sorted(pks) for c, pks in expected.items()}
    assert all(got[c.id] for c in campaigns[:4])  # the community exercises the criteria


def test_disabled_campaigns_are_not_selected(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        insert_people(connection, [Person("ann", None, [purchase(END - DAY)])])
    refresh(engine, AS_OF)
    got = candidates(engine, [campaign("on"), campaign("off", enabled=False)], AS_OF)
    assert list(got) == ["on"]
    assert len(got["on"]) == 1


# --- triggers ---------------------------------------------------------------------------


def test_stage_entry_needs_a_real_entry_since_the_previous_run(engine: sa.Engine) -> None:
    day1, day2, day3 = date(2026, 3, 1), date(2026, 3, 5), date(2026, 3, 9)
    end1 = day_end(day1, PARIS)
    old = Person("old", None, [purchase(end1 - 400 * DAY)])
    climber = Person("climber", None, [purchase(end1 - 300 * DAY)])
    with engine.begin() as connection:
        keys = insert_people(connection, [old, climber])
    entry = campaign("welcome", audience={"stage": "adopter"}, trigger={"on": "stage_entry"})
    loyal = campaign("loyal", audience={"stage": "loyalist"}, trigger={"on": "stage_entry"})
    refresh(engine, day1)
    # The first refresh only finds stages: nobody "entered" anything.
    assert candidates(engine, [entry, loyal], day1) == {"welcome": [], "loyal": []}

    with engine.begin() as connection:
        two = [purchase(day_end(day2, PARIS) - 3600), purchase(day_end(day2, PARIS) - 7200)]
        add_events(connection, keys, [("climber", e) for e in two])
    refresh(engine, day2)
    # No previous run: only entries on as_of itself count.
    assert candidates(engine, [entry, loyal], day2)["loyal"] == [keys["climber"]]
    refresh(engine, day3)
    assert candidates(engine, [loyal], day3)["loyal"] == []
    # With a previous run on day1, an entry on day2 is still news on day3 (day2 was missed).
    assert candidates(engine, [loyal], day3, previous=day1)["loyal"] == [keys["climber"]]
    assert candidates(engine, [loyal], day3, previous=day2)["loyal"] == []
    # entered_stage.within makes the trigger hold whenever the audience does.
    within = campaign(
        "within",
        audience={"stage": "loyalist", "entered_stage": {"within": "7d"}},
        trigger={"on": "stage_entry"},
    )
    assert candidates(engine, [within], day3, previous=day2)["within"] == [keys["climber"]]


def test_event_trigger_looks_back_to_the_end_of_the_previous_run(engine: sa.Engine) -> None:
    as_of = date(2026, 3, 10)
    start = day_start(as_of, PARIS)
    people = [
        Person("today", None, [purchase(start - 10 * DAY), EventFact("review_posted", start + 60)]),
        Person("late", None, [purchase(start - DAY), EventFact("review_posted", start - 3600)]),
        Person("future", None, [purchase(start - DAY), EventFact("review_posted", start + DAY)]),
        Person("other", None, [purchase(start - DAY), EventFact("login", start + 60)]),
    ]
    with engine.begin() as connection:
        keys = insert_people(connection, people)
    refresh(engine, as_of)
    review = campaign("review", trigger={"on": "event", "types": ["review_posted"]})
    assert candidates(engine, [review], as_of)["review"] == [keys["today"]]
    got = candidates(engine, [review], as_of, previous=as_of - timedelta(days=2))
    assert got["review"] == sorted([keys["today"], keys["late"]])


def test_inactivity_needs_activity_before_the_quiet_period(engine: sa.Engine) -> None:
    people = [
        Person("quiet", None, [purchase(END - 100 * DAY)]),
        Person("active", None, [purchase(END - 100 * DAY), purchase(END - 10 * DAY)]),
        Person("never", None, [EventFact("login", END - 200 * DAY)]),
    ]
    with engine.begin() as connection:
        keys = insert_people(connection, people)
    refresh(engine, AS_OF)
    winback = campaign(
        "winback",
        audience={"stage": ["adopter", "loyalist"]},
        trigger={"on": "inactivity", "for": "90d"},
    )
    assert candidates(engine, [winback], AS_OF)["winback"] == [keys["quiet"]]
    anyone = campaign(
        "logins",
        audience={"events": {"type": "login", "min": 0}},
        trigger={"on": "inactivity", "types": ["login"], "for": "30d"},
    )
    assert candidates(engine, [anyone], AS_OF)["logins"] == [keys["never"]]


def _at(zone: ZoneInfo, *parts: int) -> int:
    return to_epoch(datetime(*parts, tzinfo=zone))  # type: ignore[misc]


def test_anniversaries_follow_the_business_day_across_dst_and_feb_29(engine: sa.Engine) -> None:
    ny = NEW_YORK
    people = [
        # 23:30 on 10 March 2024 in New York (DST began that morning) is 11 March in UTC.
        Person("dst", _at(ny, 2024, 3, 10, 23, 30), [purchase(_at(ny, 2025, 1, 5, 12, 0))]),
        Person("dst-early", _at(ny, 2024, 3, 10, 0, 10), [purchase(_at(ny, 2025, 1, 5, 12))]),
        Person("day-after", _at(ny, 2024, 3, 11, 0, 5), [purchase(_at(ny, 2025, 1, 5, 12))]),
        Person("two-years", _at(ny, 2023, 3, 10, 12, 0), [purchase(_at(ny, 2025, 1, 5, 12))]),
        Person("leapling", _at(ny, 2024, 2, 29, 18, 0), [purchase(_at(ny, 2025, 1, 5, 12))]),
        Person("feb-28", _at(ny, 2023, 2, 28, 9, 0), [purchase(_at(ny, 2025, 1, 5, 12))]),
        Person("too-new", _at(ny, 2025, 3, 10, 9, 0), [purchase(_at(ny, 2025, 1, 5, 12))]),
    ]
    with engine.begin() as connection:
        keys = insert_people(connection, people)
    one = campaign("one", trigger={"on": "anniversary"})
    two = campaign("two", trigger={"on": "anniversary", "years": 2})

    def on(day: date) -> dict[str, set[str]]:
        refresh(engine, day, ny)
        got = candidates(engine, [one, two], day, zone=ny)
        names = {pk: name for name, pk in keys.items()}
        return {c: {names[pk] for pk in pks} for c, pks in got.items()}

    assert on(date(2026, 3, 10)) == {
        "one": {"dst", "dst-early", "two-years", "too-new"},
        "two": {"dst", "dst-early", "two-years"},
    }
    assert on(date(2025, 3, 10)) == {"one": {"dst", "dst-early", "two-years"}, "two": {"two-years"}}
    assert on(date(2025, 3, 11))["one"] == {"day-after"}
    # Feb 29 anniversaries fall on Feb 28 in non-leap years, and only then.
    assert on(date(2025, 2, 28)) == {"one": {"leapling", "feb-28"}, "two": {"feb-28"}}
    assert on(date(2028, 2, 28))["one"] == {"feb-28"}
    assert on(date(2028, 2, 29))["one"] == {"leapling"}


def test_anniversary_intervals_are_whole_local_days() -> None:
    intervals = anniversary_intervals(date(2026, 3, 8), 1, 2024, NEW_YORK)
    # 8 March 2026 is a DST change day in New York, but the intervals are of 2024 and 2025.
    assert [(high - low) // 3600 for low, high in intervals] == [24, 24]
    spring = anniversary_intervals(date(2025, 3, 10), 1, 2024, NEW_YORK)
    assert spring == [
        (day_start(date(2024, 3, 10), NEW_YORK), day_end(date(2024, 3, 10), NEW_YORK))
    ]
    assert (spring[0][1] - spring[0][0]) // 3600 == 23  # the day DST began is 23 hours long


def test_first_purchase_anniversary(engine: sa.Engine) -> None:
    first = _at(PARIS, 2025, 3, 31, 22, 30)
    with engine.begin() as connection:
        keys = insert_people(connection, [Person("buyer", None, [purchase(first)])])
    refresh(engine, AS_OF)
    c = campaign("first", trigger={"on": "anniversary", "of": "first_purchase"})
    assert candidates(engine, [c], AS_OF)["first"] == [keys["buyer"]]
    assert candidates(engine, [c], AS_OF - timedelta(days=1))["first"] == []


def test_birthdays_with_feb_29(engine: sa.Engine) -> None:
    early = to_epoch(datetime(2020, 1, 1))
    people = [Person(name, None, [purchase(early)]) for name in ("leap", "feb28", "mar1")]
    with engine.begin() as connection:
        keys = insert_people(connection, people)
    set_member(engine, keys["leap"], birth_month=2, birth_day=29)
    set_member(engine, keys["feb28"], birth_month=2, birth_day=28, birth_year=1990)
    set_member(engine, keys["mar1"], birth_month=3, birth_day=1)
    birthday = campaign("bday", trigger={"on": "birthday"})
    names = {pk: name for name, pk in keys.items()}

    def on(day: date) -> set[str]:
        refresh(engine, day)
        return {names[pk] for pk in candidates(engine, [birthday], day)["bday"]}

    assert on(date(2025, 2, 28)) == {"leap", "feb28"}
    assert on(date(2024, 2, 28)) == {"feb28"}
    assert on(date(2024, 2, 29)) == {"leap"}
    assert on(date(2025, 3, 1)) == {"mar1"}


# --- guard facts ------------------------------------------------------------------------


def test_guard_facts(engine: sa.Engine) -> None:
    names = ["ok", "optout", "unsub", "unsub-later", "bounced", "rested", "rest-over", "busy"]
    people = [Person(n, None, [purchase(END - 5 * DAY)]) for n in names]
    people[2].events.append(EventFact("unsubscribed", END - DAY))
    people[3].events.append(EventFact("unsubscribed", END + 60))
    people[4].events.append(EventFact("email_bounced", END - 2 * DAY))
    with engine.begin() as connection:
        keys = insert_people(connection, people)
        connection.execute(
            sa.insert(member_tags),
            [
                {
                    "member_pk": keys["rested"],
                    "tag": "nudge-fatigued",
                    "source": "system",
                    "added_on": AS_OF - timedelta(days=3),
                    "expires_on": AS_OF,
                },
                {
                    "member_pk": keys["rest-over"],
                    "tag": "nudge-fatigued",
                    "source": "system",
                    "added_on": AS_OF - timedelta(days=9),
                    "expires_on": AS_OF - timedelta(days=1),
                },
                # An imported tag of the same name is not a rest.
                {
                    "member_pk": keys["ok"],
                    "tag": "nudge-fatigued",
                    "source": "import",
                    "added_on": None,
                    "expires_on": None,
                },
            ],
        )
        busy = keys["busy"]
        add_action(connection, "a", busy, AS_OF - timedelta(days=8))  # outside 7 days
        add_action(connection, "a", busy, AS_OF - timedelta(days=6))
        add_action(connection, "b", busy, AS_OF - timedelta(days=2), state="sent")
        add_action(connection, "b", busy, AS_OF - timedelta(days=1), holdout=True, state="held_out")
        add_action(connection, "c", busy, AS_OF - timedelta(days=3), state="failed")
        add_action(connection, "c", busy, AS_OF, occurrence="once")
        add_action(connection, "a", busy, AS_OF + timedelta(days=1))  # a later night: ignored
    set_member(engine, keys["optout"], email_opt_in=False)
    refresh(engine, AS_OF)

    campaigns = [campaign("a", eligibility={"cooldown": "7d"}), campaign("c")]
    the_policy = policy(frequency_caps=[{"max": 2, "per": "7d"}])
    with engine.connect() as connection:
        found = select_candidates(connection, campaigns, AS_OF, END, None, PARIS)
        states, prior = gather_guards(connection, campaigns, found, the_policy, AS_OF, END)
    assert set(states) == set(keys.values())
    by_name = {states[pk].member_id: states[pk] for pk in states}
    assert {n for n, s in by_name.items() if not s.consent} == {"optout", "unsub", "bounced"}
    assert {n for n, s in by_name.items() if s.fatigued} == {"rested"}
    # The facts behind them, for `nudgeflow why`: the first withdrawal of a member who
    # opted in (none for an opt-out, none after the night), and the last day of a rest.
    assert {n: s.withdrawal for n, s in by_name.items() if s.withdrawal} == {
        "unsub": ("unsubscribed", END - DAY),
        "bounced": ("email_bounced", END - 2 * DAY),
    }
    assert {n: s.resting_until for n, s in by_name.items() if s.fatigued} == {"rested": AS_OF}
    assert by_name["busy"] == MemberState(
        "busy",
        consent=True,
        fatigued=False,
        sends_on=(AS_OF - timedelta(days=6), AS_OF - timedelta(days=2), AS_OF),
        taken_by="c",
    )
    assert not any(s.taken_by or s.sends_on for n, s in by_name.items() if n != "busy")
    assert prior["a"] == {
        busy: (PriorAction((AS_OF - timedelta(days=6)).isoformat(), AS_OF - timedelta(days=6)),)
    }
    assert {pk: sorted(p, key=lambda a: a.as_of) for pk, p in prior["c"].items()} == {
        busy: [
            PriorAction((AS_OF - timedelta(days=3)).isoformat(), AS_OF - timedelta(days=3)),
            PriorAction("once", AS_OF),
        ]
    }


def test_guard_facts_share_equal_earlier_actions_and_nudge_dates(engine: sa.Engine) -> None:
    """A million members' earlier actions are held as one object per distinct action (and
    one tuple per distinct list of nudge dates), not a few objects per member: planning
    1 M members x 20 campaigns stays under 1 GiB. The facts themselves are unchanged."""
    names = ["p", "q", "r"]
    with engine.begin() as connection:
        keys = insert_people(
            connection, [Person(n, None, [purchase(END - 5 * DAY)]) for n in names]
        )
        for name in names:
            add_action(connection, "a", keys[name], AS_OF - timedelta(days=3), state="sent")
        add_action(connection, "a", keys["r"], AS_OF - timedelta(days=1), state="sent")
    refresh(engine, AS_OF)
    campaigns = [campaign("a", eligibility={"cooldown": "7d"})]
    the_policy = policy(frequency_caps=[{"max": 3, "per": "7d"}])
    with engine.connect() as connection:
        found = select_candidates(connection, campaigns, AS_OF, END, None, PARIS)
        states, prior = gather_guards(connection, campaigns, found, the_policy, AS_OF, END)
    p, q, r = (keys[name] for name in names)
    three_days_ago = PriorAction((AS_OF - timedelta(days=3)).isoformat(), AS_OF - timedelta(days=3))
    assert prior["a"][p] == prior["a"][q] == (three_days_ago,)
    assert prior["a"][p] is prior["a"][q]  # one tuple for both members
    assert set(prior["a"][r]) == {
        three_days_ago,
        PriorAction((AS_OF - timedelta(days=1)).isoformat(), AS_OF - timedelta(days=1)),
    }
    assert prior["a"][p][0] in [*prior["a"][r]] and any(
        a is prior["a"][p][0] for a in prior["a"][r]
    )
    assert states[p].sends_on == (AS_OF - timedelta(days=3),)
    assert states[p].sends_on is states[q].sends_on


def test_stored_budgets(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        keys = insert_people(connection, [Person(f"m{i}", None) for i in range(6)])
        pks = list(keys.values())
        march, feb = date(2026, 3, 20), date(2026, 2, 20)
        add_action(connection, "gift", pks[0], feb, cost=3000)
        add_action(connection, "gift", pks[1], march, cost=2000, state="sent")
        add_action(connection, "gift", pks[2], march, cost=2000, state="failed")
        add_action(connection, "gift", pks[3], march, cost=0, holdout=True, state="held_out")
        add_action(connection, "gift", pks[4], date(2026, 4, 1), cost=500)
        add_action(connection, "total", pks[0], feb, cost=4000)
    reward = {"kind": "gift", "item": "mug", "item_cost": "20.00 USD"}
    campaigns = [
        campaign("gift", reward=reward, budget={"total": "100.00 USD", "per_month": "30.00 USD"}),
        campaign("total", reward=reward, budget={"total": "50.00 USD"}),
        campaign("monthly", reward=reward, budget={"per_month": "10.00 USD"}),
        campaign("free"),
    ]
    with engine.connect() as connection:
        budgets = StoredBudgets(connection, campaigns, AS_OF)
    # gift: total 10000 - 7500 = 2500; March: 3000 - 2000 = 1000 → 1000.
    assert budgets.remaining("gift") == 1000
    assert budgets.remaining("total") == 1000
    assert budgets.remaining("monthly") == 1000
    assert budgets.remaining("free") is None
    assert budgets.remaining("unknown") is None


# --- storing the plan -------------------------------------------------------------------


def test_store_plan_is_idempotent_and_snapshots_the_response_rule(engine: sa.Engine) -> None:
    people = random_community(seed=8, size=60, end=END)
    with engine.begin() as connection:
        keys = insert_people(connection, people)
    refresh(engine, AS_OF)
    campaigns = [
        campaign(
            "thanks",
            priority=10,
            eligibility={"once_per_member": True, "holdout": {"percent": 20, "salt": "s"}},
            response={"counts_as": ["email_clicked", "purchase"], "within": "14d"},
        ),
        campaign("nudge", audience={"stage": "adopter"}, eligibility={"cooldown": "30d"}),
    ]
    the_set = campaign_set(campaigns)
    with engine.begin() as connection:
        night = plan_stored_night(connection, the_set, AS_OF, END, PARIS)
        new = store_plan(connection, night.plan, AS_OF, END, campaigns, now=_NOW)
    planned = sum(len(c.actions) for c in night.plan.campaigns)
    assert new == planned > 0
    with engine.begin() as connection:
        again = plan_stored_night(connection, the_set, AS_OF, END, PARIS)
        assert store_plan(connection, again.plan, AS_OF, END, campaigns, now=_NOW) == 0
        # The second plan is the first one seen from the store: nothing new to select.
        assert store_plan(connection, night.plan, AS_OF, END, campaigns, now=_NOW) == 0
        rows = list_actions(connection, AS_OF)
    assert len(rows) == planned
    thanks = [r for r in rows if r["campaign_id"] == "thanks"]
    assert {r["state"] for r in thanks if r["holdout"]} == {"held_out"}
    assert {r["state"] for r in thanks if not r["holdout"]} == {"planned"}
    row = thanks[0]
    assert row["response_types"] == ["email_clicked", "purchase"]
    assert (row["response_from"], row["response_until"]) == (END, END + 14 * DAY)
    names = {pk: m for m, pk in keys.items()}
    assert row["action_id"] == action_id("thanks", names[row["member_pk"]], "once")


def test_a_backfill_sees_the_previous_nights_actions(engine: sa.Engine) -> None:
    """Frequency caps count the nudges of earlier nights; once campaigns do not repeat."""
    people = [Person(f"m{i}", None, [purchase(END - 400 * DAY)]) for i in range(4)]
    with engine.begin() as connection:
        insert_people(connection, people)
    campaigns = [
        campaign("daily", eligibility={"cooldown": "1d"}),
        campaign("once", priority=5),
    ]
    the_set = campaign_set(campaigns, policy(frequency_caps=[{"max": 2, "per": "7d"}]))
    selected: list[tuple[int, int]] = []
    day = date(2026, 3, 1)
    for _ in range(5):
        refresh(engine, day)
        end = day_end(day, PARIS)
        with engine.begin() as connection:
            night = plan_stored_night(connection, the_set, day, end, PARIS)
            store_plan(connection, night.plan, day, end, campaigns, now=_NOW)
        by_id = {c.campaign.id: c for c in night.plan.campaigns}
        selected.append((by_id["once"].selected, by_id["daily"].selected))
        complete_run(engine, day)
        day += timedelta(days=1)
    # Night 1: "once" (higher priority) takes everyone; night 2: "daily" nudges them
    # (the 2nd nudge in 7 days); from night 3 the cap of 2 per 7 days holds.
    assert selected == [(4, 0), (0, 4), (0, 0), (0, 0), (0, 0)]
    with engine.connect() as connection:
        night3 = plan_stored_night(
            connection, the_set, date(2026, 3, 3), day_end(date(2026, 3, 3), PARIS), PARIS
        )
    daily = next(c for c in night3.plan.campaigns if c.campaign.id == "daily")
    assert daily.excluded["frequency_cap"] == 4
