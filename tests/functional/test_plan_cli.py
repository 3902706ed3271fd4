"""``nudgeflow plan`` and ``nudgeflow why`` through the real console script: they explain
the night and write nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from nudgeflow.timeutil import day_end
from planning.lifecycle_file import load_lifecycle
from store.engine import create_store_engine
from store.migrate import upgrade
from store.profiles import refresh_profiles
from store.schema import actions, profiles, stage_history
from tests.functional.runner import Nudgeflow
from tests.integration.community import DAY, Person, insert_people

ROOT = Path(__file__).resolve().parents[2]
PARIS = ZoneInfo("Europe/Paris")
AS_OF = date(2026, 3, 31)
END = day_end(AS_OF, PARIS)

THANKS = """\
id: thanks
name: Thank-you mug
priority: 10
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: gift, item: mug, item_cost: "5.00 USD"}
email: {template: thanks, subject: Thanks}
"""
WINBACK = """\
id: winback
name: We miss you
audience: {stage: adopter}
trigger: {on: inactivity, for: 30d}
eligibility: {cooldown: 30d}
email: {template: winback, subject: Come back}
"""


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, tmp_path: Path) -> Nudgeflow:
    """The console script on the community's campaigns folder, in Paris."""
    return nudgeflow.configure(
        NUDGEFLOW_CAMPAIGNS_DIR=str(tmp_path / "campaigns"), NUDGEFLOW_TIMEZONE="Europe/Paris"
    )


@pytest.fixture
def community(tmp_path: Path) -> Iterator[sa.Engine]:
    """Four members and profiles refreshed for the day before ``AS_OF``."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    shutil.copy(ROOT / "campaigns/lifecycle.yaml", folder / "lifecycle.yaml")
    (folder / "thanks.yaml").write_text(THANKS)
    (folder / "winback.yaml").write_text(WINBACK)
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    people = [
        Person("ann", None, [EventFact("purchase", END - 10 * DAY, 1000, "USD")]),
        Person(
            "bob",
            None,
            [
                EventFact("purchase", END - 10 * DAY, 1000, "USD"),
                EventFact("unsubscribed", END - 2 * DAY),
            ],
        ),
        Person("cat", None, [EventFact("login", END - 3 * DAY)]),
        Person("dan", None, [EventFact("purchase", END - 100 * DAY, 1000, "USD")]),
    ]
    with engine.begin() as connection:
        insert_people(connection, people)
        day = date(2026, 3, 30)
        refresh_profiles(connection, load_lifecycle(folder), day, day_end(day, PARIS), "USD")
    yield engine
    engine.dispose()


def _snapshot(engine: sa.Engine) -> tuple[object, ...]:
    with engine.connect() as connection:
        return (
            sorted(tuple(r) for r in connection.execute(sa.select(profiles)).all()),
            sorted(tuple(r) for r in connection.execute(sa.select(stage_history)).all()),
            connection.execute(sa.select(sa.func.count()).select_from(actions)).scalar_one(),
        )


def test_plan_json_shows_the_night_and_writes_nothing(
    nudgeflow: Nudgeflow, community: sa.Engine
) -> None:
    before = _snapshot(community)
    result = nudgeflow("plan", "--as-of", AS_OF.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["as_of"] == AS_OF.isoformat()
    thanks, winback = document["campaigns"]
    assert (thanks["id"], thanks["matched"], thanks["selected"]) == ("thanks", 3, 2)
    assert thanks["excluded"]["consent"] == 1
    assert set(thanks["excluded"]) == {
        "out_of_season",
        "self_referral",
        "referral_existing_customer",
        "referral_unconverted",
        "referral_velocity",
        "consent",
        "fatigued",
        "already_received",
        "lower_priority",
        "frequency_cap",
        "holdout",
        "budget",
        "max_per_run",
    }
    assert sorted(a["member_id"] for a in thanks["actions"]) == ["ann", "dan"]
    action = thanks["actions"][0]
    assert set(action) == {
        "action_id",
        "member_id",
        "occurrence",
        "holdout",
        "reward",
        "email",
        "variant",
    }
    assert action["variant"] is None  # the shipped campaign has no variants
    assert action["reward"]["item"] == "mug"
    assert action["email"] == "thanks"
    assert (winback["matched"], winback["selected"]) == (1, 0)
    assert winback["excluded"]["lower_priority"] == 1
    assert _snapshot(community) == before
    assert before[2] == 0

    table = nudgeflow("plan", "--as-of", AS_OF.isoformat(), "--campaign", "thanks")
    assert table.returncode == 0, table.stderr
    assert "thanks (priority 10): matched 3, selected 2, held out 0" in table.stdout
    assert "  excluded: consent 1\n" in table.stdout  # only the reasons that apply
    assert "fatigued 0" not in table.stdout
    assert "total: 2 members nudged, 2 rewards" in table.stdout
    assert "winback" not in table.stdout
    assert "gift: mug" in table.stdout
    assert _snapshot(community) == before

    unknown = nudgeflow("plan", "--as-of", AS_OF.isoformat(), "--campaign", "nope")
    assert unknown.returncode == 1
    assert "no campaign with id 'nope'" in unknown.stderr


def test_why_explains_each_campaign_in_plain_words(
    nudgeflow: Nudgeflow, community: sa.Engine
) -> None:
    before = _snapshot(community)

    def why(member: str) -> str:
        result = nudgeflow("why", member, "--as-of", AS_OF.isoformat())
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "thanks: selected: gift: mug, email thanks" in why("ann")
    assert (
        "winback: not triggered: last purchase event on 2026-03-21, within the last 30 days"
        in why("ann")
    )
    bob = why("bob")
    assert "thanks: excluded: no consent (unsubscribed on 2026-03-30)" in bob
    cat = why("cat")
    assert "thanks: not in the audience: is in stage (none); the audience is adopter" in cat
    dan = why("dan")
    assert "winback: excluded: lower priority (thanks, priority 10, took the member tonight)" in dan
    assert _snapshot(community) == before

    ghost = nudgeflow("why", "ghost", "--as-of", AS_OF.isoformat())
    assert ghost.returncode == 1
    assert ghost.stderr.strip() == "error: no member with member_id 'ghost'"


def test_a_bad_campaign_file_is_reported_with_its_location(
    nudgeflow: Nudgeflow, tmp_path: Path, community: sa.Engine
) -> None:
    (tmp_path / "campaigns" / "broken.yaml").write_text(
        "id: broken\nname: Broken\naudience: {stage: loyalst}\ntrigger: {on: schedule}\n"
        "eligibility: {once_per_member: true}\nemail: {template: t, subject: s}\n"
    )
    result = nudgeflow("plan", "--as-of", AS_OF.isoformat())
    assert result.returncode == 1
    assert "broken.yaml:3" in result.stderr
    assert "unknown stage 'loyalst'" in result.stderr
    assert "Traceback" not in result.stderr
