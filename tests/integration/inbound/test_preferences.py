"""The preference centre's use cases on SQLite and PostgreSQL: showing and changing a
member's categories, pause and consent, each change an event recorded once, and the standing
preferences the planner reads for a night (``store.preferences``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from delivery.tokens import UnsubscribeToken
from inbound.preferences import (
    PAUSE_DAYS,
    InvalidPreferenceChange,
    PreferenceChange,
    PreferenceView,
    change_preferences,
    show_preferences,
)
from nudgeflow.errors import NotFoundError, NudgeflowError
from nudgeflow.timeutil import day_end, to_epoch
from store.consent import consent_of
from store.preferences import standing_preferences
from store.schema import events, members
from tests.integration.community import Person, insert_people

CATEGORIES = ("rewards", "surveys", "community")
ZONE = ZoneInfo("Europe/Paris")
AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # business day 2026-11-20 in Paris
TOKEN = UnsubscribeToken("ada", "loyalist-survey")
SOURCE = "preference-centre"


@pytest.fixture
def people(engine: sa.Engine) -> dict[str, int]:
    with engine.begin() as connection:
        return insert_people(connection, [Person("ada", None), Person("bob", None)])


def change(engine: sa.Engine, what: PreferenceChange, at: datetime = AT) -> PreferenceView:
    with engine.begin() as connection:
        return change_preferences(connection, TOKEN, what, CATEGORIES, at=at, zone=ZONE)


def show(engine: sa.Engine, member_id: str = "ada", now: datetime = AT) -> PreferenceView:
    with engine.connect() as connection:
        return show_preferences(connection, member_id, CATEGORIES, now=now, zone=ZONE)


def recorded(engine: sa.Engine) -> list[tuple[str, int, dict[str, object]]]:
    with engine.connect() as connection:
        query = sa.select(events.c.type, events.c.occurred_at, events.c.properties).order_by(
            events.c.id
        )
        return [(str(t), int(o), dict(p or {})) for t, o, p in connection.execute(query)]


def test_a_new_member_is_subscribed_to_everything(
    engine: sa.Engine, people: dict[str, int]
) -> None:
    assert show(engine) == PreferenceView(
        "ada", True, (("rewards", True), ("surveys", True), ("community", True)), None
    )


def test_an_unknown_member_is_not_found(engine: sa.Engine, people: dict[str, int]) -> None:
    with pytest.raises(NotFoundError):
        show(engine, "nobody")
    with engine.begin() as connection, pytest.raises(NotFoundError):
        change_preferences(
            connection,
            UnsubscribeToken("nobody", "c"),
            PreferenceChange(categories_out=frozenset({"surveys"})),
            CATEGORIES,
            at=AT,
            zone=ZONE,
        )


def test_leaving_a_category_is_recorded_once(engine: sa.Engine, people: dict[str, int]) -> None:
    out = PreferenceChange(categories_out=frozenset({"surveys"}))
    first = change(engine, out)
    again = change(engine, out, AT + timedelta(hours=1))
    assert first == again == show(engine, now=AT + timedelta(days=1))
    assert first.categories == (("rewards", True), ("surveys", False), ("community", True))
    assert recorded(engine) == [
        (
            "category_unsubscribed",
            to_epoch(AT),
            {"category": "surveys", "source": SOURCE, "campaign_id": TOKEN.campaign_id},
        )
    ]
    # The whole set after the change: rejoining surveys and leaving rewards.
    later = AT + timedelta(days=2)
    view = change(engine, PreferenceChange(categories_out=frozenset({"rewards"})), later)
    assert view.categories == (("rewards", False), ("surveys", True), ("community", True))
    changes = [(kind, said["category"]) for kind, _, said in recorded(engine)]
    assert changes == [
        ("category_unsubscribed", "surveys"),
        ("category_unsubscribed", "rewards"),
        ("category_resubscribed", "surveys"),
    ]
    assert show(engine, "bob").categories == tuple((c, True) for c in CATEGORIES)


def test_a_change_undone_within_the_same_second_is_still_recorded(
    engine: sa.Engine, people: dict[str, int]
) -> None:
    out, back = PreferenceChange(categories_out=frozenset({"surveys"})), PreferenceChange()
    for what in (out, back, out):
        change(engine, what)
    assert [kind for kind, _, _ in recorded(engine)] == [
        "category_unsubscribed",
        "category_resubscribed",
        "category_unsubscribed",
    ]
    assert show(engine).categories[1] == ("surveys", False)


@pytest.mark.parametrize("days", PAUSE_DAYS)
def test_a_pause_covers_its_days_then_ends(
    engine: sa.Engine, people: dict[str, int], days: int
) -> None:
    view = change(engine, PreferenceChange(pause_days=days))
    last = date(2026, 11, 20) + timedelta(days=days - 1)
    assert view.paused_until == last
    assert change(engine, PreferenceChange(pause_days=days), AT + timedelta(hours=2)) == view
    (kind, _, said) = recorded(engine)[0]
    assert (kind, said["until"], said["days"]) == ("nudges_paused", day_end(last, ZONE), days)
    assert len(recorded(engine)) == 1
    # In force through the last day, over after it.
    assert show(engine, now=datetime(last.year, last.month, last.day, 22, tzinfo=UTC)) == view
    assert show(engine, now=AT + timedelta(days=days + 1)).paused_until is None
    with engine.connect() as connection:
        night = standing_preferences(connection, day_end(last, ZONE))
        after = standing_preferences(connection, day_end(last + timedelta(days=1), ZONE))
    assert night[people["ada"]].paused_until == day_end(last, ZONE)
    assert people["ada"] not in after


def test_a_pause_is_replaced_and_resumed(engine: sa.Engine, people: dict[str, int]) -> None:
    change(engine, PreferenceChange(pause_days=90))
    longer = change(engine, PreferenceChange(pause_days=30), AT + timedelta(days=3))
    assert longer.paused_until == date(2026, 11, 23) + timedelta(days=29)
    resumed = change(engine, PreferenceChange(resume=True), AT + timedelta(days=4))
    assert resumed.paused_until is None
    # Resuming with no pause in force records nothing.
    change(engine, PreferenceChange(resume=True), AT + timedelta(days=5))
    assert [kind for kind, _, _ in recorded(engine)] == [
        "nudges_paused",
        "nudges_paused",
        "nudges_resumed",
    ]


def test_unsubscribe_all_and_resubscribe(engine: sa.Engine, people: dict[str, int]) -> None:
    gone = change(engine, PreferenceChange(unsubscribe_all=True))
    assert not gone.email_consent
    change(engine, PreferenceChange(unsubscribe_all=True), AT + timedelta(hours=1))
    back = change(engine, PreferenceChange(resubscribe=True), AT + timedelta(days=1))
    assert back.email_consent
    change(engine, PreferenceChange(resubscribe=True), AT + timedelta(days=2))
    kinds = [(kind, said.get("source")) for kind, _, said in recorded(engine)]
    assert kinds == [("unsubscribed", SOURCE), ("consent_restored", SOURCE)]
    with engine.connect() as connection:
        restore = consent_of(connection, "ada").restored
        opted_in = connection.execute(
            sa.select(members.c.email_opt_in).where(members.c.member_id == "ada")
        ).scalar()
    assert restore is not None and restore.by == "the member" and opted_in


@pytest.mark.parametrize(
    ("what", "words"),
    [
        (PreferenceChange(categories_out=frozenset({"news"})), "unknown category news"),
        (PreferenceChange(pause_days=7), "a pause lasts 30 or 90 days, not 7"),
        (PreferenceChange(pause_days=30, resume=True), "both start a pause and end it"),
        (PreferenceChange(unsubscribe_all=True, resubscribe=True), "both unsubscribe"),
    ],
)
def test_a_bad_change_is_refused_and_changes_nothing(
    engine: sa.Engine, people: dict[str, int], what: PreferenceChange, words: str
) -> None:
    with pytest.raises(InvalidPreferenceChange, match=words) as caught:
        change(engine, what)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, NudgeflowError)
    assert recorded(engine) == []


def test_standing_preferences_of_a_night(engine: sa.Engine, people: dict[str, int]) -> None:
    """Changes after the night's end do not count for it; one read covers every member."""
    night = date(2026, 11, 20)
    change(engine, PreferenceChange(categories_out=frozenset({"surveys", "rewards"})))
    change(engine, PreferenceChange(pause_days=30), datetime(2026, 11, 21, 8, tzinfo=UTC))
    with engine.connect() as connection:
        first = standing_preferences(connection, day_end(night, ZONE))
        second = standing_preferences(connection, day_end(night + timedelta(days=1), ZONE))
    ada = first[people["ada"]]
    assert ada.categories_out == {"surveys": to_epoch(AT), "rewards": to_epoch(AT)}
    assert ada.paused_until is None
    assert second[people["ada"]].paused_until is not None
    assert people["bob"] not in first and people["bob"] not in second
