"""The preference centre's choices as consent, on SQLite and PostgreSQL: the planner's guard
facts carry each member's pause and categories left (one read for the night), the plan
excludes them with ``consent``, and dispatch's last look before sending honours a pause or a
category left after the plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from delivery.tokens import UnsubscribeToken
from domain.plan import NightInput, NoConsent
from inbound.preferences import PreferenceChange, change_preferences
from nudgeflow.timeutil import day_end, to_epoch
from planning.campaign_files import load_campaign_set
from planning.planner import FixedBudgets, plan_night
from store import outbox
from store.guard_facts import gather_guards
from store.schema import actions
from tests.integration.community import Person, insert_people
from tests.integration.dispatch_rows import action

ROOT = Path(__file__).resolve().parents[3]
ZONE = ZoneInfo("UTC")
NIGHT = date(2026, 11, 20)
CATEGORIES = ("rewards", "surveys", "community")
PEOPLE = ("ann", "bob", "cat", "dan", "eve")


def prefer(engine: sa.Engine, member_id: str, change: PreferenceChange, at: datetime) -> None:
    token = UnsubscribeToken(member_id, "loyalist-survey")
    with engine.begin() as connection:
        change_preferences(connection, token, change, CATEGORIES, at=at, zone=ZONE)


def test_the_plan_excludes_a_pause_and_a_category_left_as_consent(engine: sa.Engine) -> None:
    found = load_campaign_set(ROOT / "campaigns")
    by_id = {c.id: c for c in found.campaigns}
    survey, discount = by_id["loyalist-survey"], by_id["loyalist-discount"]
    assert (survey.category, discount.category) == ("surveys", "rewards")
    with engine.begin() as connection:
        keys = insert_people(connection, [Person(m, None) for m in PEOPLE])
    during = datetime(2026, 11, 20, 9, tzinfo=UTC)
    prefer(engine, "ann", PreferenceChange(pause_days=30), during)
    prefer(engine, "bob", PreferenceChange(categories_out=frozenset({"surveys"})), during)
    prefer(engine, "cat", PreferenceChange(pause_days=30), during - timedelta(days=40))  # over
    prefer(engine, "dan", PreferenceChange(pause_days=30), during - timedelta(days=1))
    prefer(engine, "dan", PreferenceChange(resume=True), during)
    after = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)  # after the night's end: not counted
    prefer(engine, "eve", PreferenceChange(categories_out=frozenset({"surveys"})), after)

    candidates = {c.id: list(keys.values()) for c in (survey, discount)}
    with engine.connect() as connection:
        states, prior = gather_guards(
            connection, [survey, discount], candidates, found.policy, NIGHT, day_end(NIGHT, ZONE)
        )
    pause_end = day_end(NIGHT + timedelta(days=29), ZONE)
    assert states[keys["ann"]].paused_until == pause_end
    assert states[keys["bob"]].categories_out == (("surveys", to_epoch(during)),)
    for member in ("cat", "dan", "eve"):
        assert (states[keys[member]].paused_until, states[keys[member]].categories_out) == (
            None,
            (),
        ), member

    night = NightInput(NIGHT, [survey, discount], states, candidates, prior)
    plan = plan_night(night, found.policy, FixedBudgets())
    plans = {cp.campaign.id: cp for cp in plan.campaigns}
    by_pk = {pk: member for member, pk in keys.items()}
    outcome = {
        cid: {by_pk[pk]: outcome for pk, outcome in cp.outcomes.items()}
        for cid, cp in plans.items()
    }
    assert outcome["loyalist-survey"]["ann"] == "consent"
    assert outcome["loyalist-survey"]["bob"] == "consent"
    assert outcome["loyalist-discount"]["ann"] == "consent"
    assert outcome["loyalist-discount"]["bob"] != "consent"  # rewards were not left
    for member in ("cat", "dan", "eve"):
        assert outcome["loyalist-survey"][member] != "consent", member
    survey_plan = plans["loyalist-survey"]
    assert plan.exclusion(night, survey_plan, keys["ann"]) == NoConsent(None, pause_end)
    assert plan.exclusion(night, survey_plan, keys["bob"]) == NoConsent(
        None, category_out=("surveys", to_epoch(during))
    )


def test_dispatch_honours_a_preference_made_after_the_plan(engine: sa.Engine) -> None:
    """The night was planned; at 01:00 ann pauses, bob leaves surveys, cat leaves rewards;
    dispatch at 02:00 sends to cat and dan only (and eve's pause ended long ago)."""
    with engine.begin() as connection:
        keys = insert_people(connection, [Person(m, None) for m in PEOPLE])
    one = datetime(2026, 11, 21, 1, tzinfo=UTC)
    prefer(engine, "ann", PreferenceChange(pause_days=90), one)
    prefer(engine, "bob", PreferenceChange(categories_out=frozenset({"surveys"})), one)
    prefer(engine, "cat", PreferenceChange(categories_out=frozenset({"rewards"})), one)
    prefer(engine, "eve", PreferenceChange(pause_days=30), one - timedelta(days=60))
    with engine.begin() as connection:
        rows = [action(keys, "survey", member, NIGHT, "planned") for member in PEOPLE]
        rows.append(action(keys, "plain", "ann", NIGHT, "planned"))
        connection.execute(sa.insert(actions), rows)
        loaded = outbox.load(
            connection,
            [row["action_id"] for row in rows],
            now=one + timedelta(hours=1),
            categories={"survey": "surveys", "plain": None},
        )
    by_pk = {pk: member for member, pk in keys.items()}
    seen = {(a.campaign_id, by_pk[a.member_pk]): (a.consent, a.preference) for a in loaded}
    assert seen == {
        ("survey", "ann"): (False, "paused"),
        ("survey", "bob"): (False, "category:surveys"),
        ("survey", "cat"): (True, None),
        ("survey", "dan"): (True, None),
        ("survey", "eve"): (True, None),
        ("plain", "ann"): (False, "paused"),
    }
