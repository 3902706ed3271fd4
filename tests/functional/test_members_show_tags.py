"""``nudgeflow members show`` and ``nudgeflow plan`` for a member whose fatigue tag was set
and then cleared by a response: ``plan`` rehearses the recovery like the run, ``members
show`` lists only the tags that apply, and shows the tag's history."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from nudgeflow.timeutil import day_end, day_start
from planning.campaign_files import load_campaign_set
from store.engine import create_store_engine
from store.fatigue import recover_fatigued, tag_fatigued
from store.migrate import upgrade
from store.profiles import refresh_profiles
from store.schema import member_tag_history, member_tags
from tests.functional.runner import Nudgeflow
from tests.integration.community import DAY, Person, add_events, insert_people
from tests.integration.store.test_plan_store import add_action

ROOT = Path(__file__).resolve().parents[2]
PARIS = ZoneInfo("Europe/Paris")
DAILY = """\
id: daily
name: Daily tip
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {cooldown: 1d}
email: {template: adopter_welcome, subject: A tip}
response: {counts_as: [email_clicked], within: 1d}
"""
D3 = date(2026, 5, 6)  # tagged after that night, from the nudges of the two before
D5 = D3 + timedelta(days=2)  # he clicks that day


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, tmp_path: Path) -> Nudgeflow:
    """The shared runner on this module's campaigns folder, in the Paris time zone."""
    return nudgeflow.configure(
        NUDGEFLOW_CAMPAIGNS_DIR=str(tmp_path / "campaigns"), NUDGEFLOW_TIMEZONE="Europe/Paris"
    )


@pytest.fixture
def rested(tmp_path: Path) -> Iterator[sa.Engine]:
    """Bob, nudged daily on D3-2 … D3 and tagged after D3; he clicks on D5."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    shutil.copy(ROOT / "campaigns/lifecycle.yaml", folder / "lifecycle.yaml")
    (folder / "daily.yaml").write_text(DAILY)
    (folder / "policy.yaml").write_text("fatigue: {unanswered_nudges: 2, rest_for: 10d}\n")
    campaigns = load_campaign_set(folder)
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    old = day_end(D3, PARIS) - 100 * DAY
    with engine.begin() as connection:
        bob = Person("bob", None, [EventFact("purchase", old, 1000, "USD")], frozenset({"vip"}))
        keys = insert_people(connection, [bob])
        for night in (D3 - timedelta(days=2), D3 - timedelta(days=1), D3):
            end = day_end(night, PARIS)
            add_action(
                connection,
                "daily",
                keys["bob"],
                night,
                state="sent",
                response_from=end,
                response_until=end + DAY,
            )
        assert tag_fatigued(connection, campaigns.policy, D3, day_end(D3, PARIS), PARIS) == 1
        click = EventFact("email_clicked", day_start(D5, PARIS) + 3600)
        add_events(connection, keys, [("bob", click)])
        day = D3 + timedelta(days=1)
        refresh_profiles(connection, campaigns.lifecycle, day, day_end(day, PARIS), "USD")
    yield engine
    engine.dispose()


def _tag_rows(engine: sa.Engine) -> tuple[object, ...]:
    with engine.connect() as connection:
        return (
            connection.execute(sa.select(member_tags)).all(),
            connection.execute(sa.select(member_tag_history)).all(),
        )


def test_plan_rehearses_the_recovery_and_selects_the_member_who_responded(
    nudgeflow: Nudgeflow, rested: sa.Engine
) -> None:
    before = _tag_rows(rested)
    result = nudgeflow("plan", "--as-of", D5.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    (daily,) = json.loads(result.stdout)["campaigns"]
    assert [a["member_id"] for a in daily["actions"]] == ["bob"]
    assert daily["excluded"]["fatigued"] == 0
    assert _tag_rows(rested) == before  # rehearsed, and rolled back

    # The night before he clicked, he is still resting.
    d4 = (D5 - timedelta(days=1)).isoformat()
    result = nudgeflow("plan", "--as-of", d4, "--json")
    (daily,) = json.loads(result.stdout)["campaigns"]
    assert daily["excluded"]["fatigued"] == 1


def test_members_show_lists_a_cleared_tag_no_more_and_keeps_its_history(
    nudgeflow: Nudgeflow, tmp_path: Path, rested: sa.Engine
) -> None:
    resting = nudgeflow("members", "show", "bob", "--json")
    assert resting.returncode == 0, resting.stderr
    assert json.loads(resting.stdout)["tags"] == ["nudge-fatigued", "vip"]

    campaigns = load_campaign_set(tmp_path / "campaigns")
    with rested.begin() as connection:
        end = day_end(D5, PARIS)
        assert recover_fatigued(connection, campaigns.policy, D5, end, PARIS) == 1
        refresh_profiles(connection, campaigns.lifecycle, D5, end, "USD")

    document = json.loads(nudgeflow("members", "show", "bob", "--json").stdout)
    assert document["tags"] == ["vip"]
    assert [(c["change"], c["as_of"], c["rest_until"]) for c in document["tag_history"]] == [
        ("tagged", D3.isoformat(), (D3 + timedelta(days=9)).isoformat()),
        ("cleared", D5.isoformat(), None),
    ]
    text = nudgeflow("members", "show", "bob")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(line.split() == ["tags", "vip"] for line in lines), text.stdout
    assert f"{D3}  nudge-fatigued tagged: 2 unanswered nudges in a row" in text.stdout
    assert f"rest through {D3 + timedelta(days=9)}" in text.stdout
    assert f"{D5}  nudge-fatigued cleared: responded or engaged" in text.stdout
