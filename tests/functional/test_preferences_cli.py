"""The preference centre's choices through the real console script: ``nudgeflow why`` says
which one left a member out (a pause, a category unsubscribed from), and ``nudgeflow members
show`` lists them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from delivery.tokens import UnsubscribeToken
from inbound.preferences import PreferenceChange, PreferenceView, change_preferences
from nudgeflow.timeutil import day_end
from planning.lifecycle_file import load_lifecycle
from store.engine import create_store_engine
from store.migrate import upgrade
from store.profiles import refresh_profiles
from tests.functional.runner import Nudgeflow
from tests.integration.community import DAY, Person, insert_people

ROOT = Path(__file__).resolve().parents[2]
PARIS = ZoneInfo("Europe/Paris")
AS_OF = date(2026, 3, 31)
END = day_end(AS_OF, PARIS)
CATEGORIES = ("rewards", "surveys")

THANKS = """\
id: thanks
name: Thank-you mug
category: rewards
priority: 10
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: gift, item: mug, item_cost: "5.00 USD"}
email: {template: thanks, subject: Thanks}
"""
SURVEY = """\
id: survey
name: Tell us
category: surveys
priority: 20
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {once_per_member: true}
email: {template: survey, subject: Tell us}
"""


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, tmp_path: Path) -> Nudgeflow:
    return nudgeflow.configure(
        NUDGEFLOW_CAMPAIGNS_DIR=str(tmp_path / "campaigns"), NUDGEFLOW_TIMEZONE="Europe/Paris"
    )


def prefer(
    engine: sa.Engine, member_id: str, change: PreferenceChange, at: datetime
) -> PreferenceView:
    with engine.begin() as connection:
        return change_preferences(
            connection, UnsubscribeToken(member_id, "thanks"), change, CATEGORIES, at=at, zone=PARIS
        )


@pytest.fixture
def community(tmp_path: Path) -> Iterator[sa.Engine]:
    """Three adopters: ann paused on 2026-03-27, bob left surveys on 2026-03-28, cat none."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    shutil.copy(ROOT / "campaigns/lifecycle.yaml", folder / "lifecycle.yaml")
    (folder / "policy.yaml").write_text(f"categories: [{', '.join(CATEGORIES)}]\n")
    (folder / "thanks.yaml").write_text(THANKS)
    (folder / "survey.yaml").write_text(SURVEY)
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    bought = [EventFact("purchase", END - 10 * DAY, 1000, "USD")]
    with engine.begin() as connection:
        insert_people(connection, [Person(m, None, list(bought)) for m in ("ann", "bob", "cat")])
        day = date(2026, 3, 30)
        refresh_profiles(connection, load_lifecycle(folder), day, day_end(day, PARIS), "USD")
    prefer(engine, "ann", PreferenceChange(pause_days=30), datetime(2026, 3, 27, 9, tzinfo=UTC))
    out = PreferenceChange(categories_out=frozenset({"surveys"}))
    prefer(engine, "bob", out, datetime(2026, 3, 28, 23, 30, tzinfo=UTC))  # the 29th in Paris
    yield engine
    engine.dispose()


def test_why_says_which_preference_left_the_member_out(
    nudgeflow: Nudgeflow, community: sa.Engine
) -> None:
    def why(member: str) -> str:
        result = nudgeflow("why", member, "--as-of", AS_OF.isoformat())
        assert result.returncode == 0, result.stderr
        return result.stdout

    ann = why("ann")
    paused = "no consent (paused all nudges until 2026-04-25 in the preference centre)"
    assert f"survey: excluded: {paused}" in ann
    assert f"thanks: excluded: {paused}" in ann
    bob = why("bob")
    assert "survey: excluded: no consent (unsubscribed from surveys on 2026-03-29)" in bob
    assert "thanks: selected: gift: mug, email thanks" in bob
    assert "survey: selected" in why("cat")


def test_members_show_lists_the_preferences(nudgeflow: Nudgeflow, community: sa.Engine) -> None:
    # members show reads them as of now: a pause made now is in force.
    cat = prefer(community, "cat", PreferenceChange(pause_days=90), datetime.now(UTC))
    assert cat.paused_until is not None
    shown = nudgeflow("members", "show", "bob")
    assert shown.returncode == 0, shown.stderr
    assert "  preferences   unsubscribed from surveys (since 2026-03-29)\n" in shown.stdout
    paused = nudgeflow("members", "show", "cat")
    assert f"  preferences   all nudges paused until {cat.paused_until}\n" in paused.stdout
    # Ann's pause of March is over by now.
    ann = json.loads(nudgeflow("members", "show", "ann", "--json").stdout)
    assert ann["preferences"] == {"categories_out": {}, "paused_until": None}
    assert "  preferences   none (every category, not paused)\n" in (
        nudgeflow("members", "show", "ann").stdout
    )
    doc = json.loads(nudgeflow("members", "show", "cat", "--json").stdout)
    assert doc["preferences"] == {
        "categories_out": {},
        "paused_until": cat.paused_until.isoformat(),
    }
    assert cat.paused_until >= date.today() + timedelta(days=88)


def test_members_show_says_whether_email_consent_stands(
    nudgeflow: Nudgeflow, community: sa.Engine
) -> None:
    assert "  email         given\n" in nudgeflow("members", "show", "ann").stdout
    prefer(
        community, "ann", PreferenceChange(unsubscribe_all=True), datetime(2026, 3, 30, tzinfo=UTC)
    )
    shown = nudgeflow("members", "show", "ann")
    assert shown.returncode == 0, shown.stderr
    assert "  email         withdrawn: unsubscribed on 2026-03-30\n" in shown.stdout
    doc = json.loads(nudgeflow("members", "show", "ann", "--json").stdout)
    assert doc["email_consent"] == {
        "given": False,
        "withdrawn_by": "unsubscribed",
        "since": "2026-03-30",
    }
