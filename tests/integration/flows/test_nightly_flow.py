"""The nightly and backfill flows through the Prefect engine (one harness per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from bootstrap.app import process_app
from nudgeflow.timeutil import day_end
from store.schema import actions, member_tags, runs
from tests.integration.community import DAY, Person, add_events, insert_people

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.prefect


@pytest.fixture
def app_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NUDGEFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("NUDGEFLOW_CAMPAIGNS_DIR", str(ROOT / "campaigns"))
    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("NUDGEFLOW_EMAIL__OUTBOX_DIR", str(tmp_path / "outbox"))
    process_app.cache_clear()
    yield db_url
    process_app().engine.dispose()
    process_app.cache_clear()


def test_backfill_runs_each_night_in_order_and_records_runs(
    prefect_harness: None, app_env: str
) -> None:
    from flows.nightly import backfill, nightly

    end = day_end(date(2026, 5, 1), ZoneInfo("Europe/Paris"))
    people = [
        Person("ann", None, [EventFact("purchase", end - 10 * DAY, 1000, "USD")]),
        Person("bob", None, [EventFact("purchase", end - n * DAY, 1000, "USD") for n in (1, 5, 9)]),
    ]
    engine = process_app().engine  # migrated on first use
    with engine.begin() as connection:
        insert_people(connection, people)

    nights = backfill(date(2026, 4, 29), date(2026, 5, 1))
    assert [n["as_of"] for n in nights] == ["2026-04-29", "2026-04-30", "2026-05-01"]
    assert nights[0]["previous_as_of"] is None
    assert nights[1]["stages"] == {"adopter": 2}  # bob's third purchase is on 1 May
    assert nights[2]["previous_as_of"] == "2026-04-30"
    assert nights[2]["moves"] == [{"from": "adopter", "to": "loyalist", "members": 1}]

    again = nightly(date(2026, 5, 1))  # the same night twice: the same funnel
    assert again["stages"] == nights[2]["stages"]
    assert again["moves"] == nights[2]["moves"]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(runs.c.as_of, runs.c.status, runs.c.flow_run_id)).all()
    assert [(r.as_of.isoformat(), r.status) for r in rows] == [
        ("2026-04-29", "completed"),
        ("2026-04-30", "completed"),
        ("2026-05-01", "completed"),
        ("2026-05-01", "completed"),
    ]
    assert all(r.flow_run_id for r in rows)

    # Each night funded the budgeted campaigns from their files, once, and the ledger holds.
    from store.ledger import balances, verify

    assert [n["rewards"]["funding_changes"] > 0 for n in nights] == [True, False, False]
    assert again["rewards"] == {"funding_changes": 0, "redeemed": 0, "expired": 0}
    with engine.connect() as connection:
        assert verify(connection).ok
        budgets = {
            b.campaign_id: b.amount_minor
            for b in balances(connection)
            if b.kind == "budget" and b.campaign_id
        }
    assert budgets["loyalist-discount"] > 0


CAMPAIGNS = {
    "thanks.yaml": """
id: thanks
name: Thank you
priority: 10
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {once_per_member: true}
email: {template: adopter_welcome, subject: Thanks}
response: {counts_as: [email_clicked], within: 1d}
""",
    "daily.yaml": """
id: daily
name: Daily tip
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {cooldown: 1d}
email: {template: adopter_welcome, subject: A tip}
response: {counts_as: [email_clicked], within: 1d}
""",
    "policy.yaml": """
frequency_caps: [{max: 2, per: 7d}]
fatigue: {unanswered_nudges: 2, rest_for: 10d}
""",
}


@pytest.fixture
def planning_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app on a campaigns folder of two campaigns made for this test."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "lifecycle.yaml").write_text((ROOT / "campaigns/lifecycle.yaml").read_text())
    for name, text in CAMPAIGNS.items():
        (folder / name).write_text(text)
    monkeypatch.setenv("NUDGEFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("NUDGEFLOW_CAMPAIGNS_DIR", str(folder))
    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("NUDGEFLOW_EMAIL__OUTBOX_DIR", str(tmp_path / "outbox"))
    process_app.cache_clear()
    yield db_url
    process_app().engine.dispose()
    process_app.cache_clear()


def _plan_counts(night: dict[str, Any]) -> dict[str, tuple[int, dict[str, int]]]:
    return {
        c["id"]: (c["selected"], {r: n for r, n in c["excluded"].items() if n})
        for c in night["plan"]["campaigns"]
    }


def test_nightly_plans_stores_actions_and_tags_fatigue_across_a_backfill(
    prefect_harness: None, planning_env: str
) -> None:
    from flows.nightly import backfill, nightly

    paris = ZoneInfo("Europe/Paris")
    d1, d2, d3 = date(2026, 4, 29), date(2026, 4, 30), date(2026, 5, 1)
    old = day_end(d1, paris) - 100 * DAY
    people = [
        Person("ann", None, [EventFact("purchase", old, 1000, "USD")]),
        Person("bob", None, [EventFact("purchase", old, 1000, "USD")]),
    ]
    engine = process_app().engine
    with engine.begin() as connection:
        keys = insert_people(connection, people)
        # Ann clicks inside the response window of her first nudge; Bob never answers.
        add_events(connection, keys, [("ann", EventFact("email_clicked", day_end(d1, paris) + 60))])

    nights = backfill(d1, d3)
    counts = [_plan_counts(n) for n in nights]
    assert counts[0] == {"thanks": (2, {}), "daily": (0, {"lower_priority": 2})}
    assert counts[1] == {"thanks": (0, {"already_received": 2}), "daily": (2, {})}
    # Two nudges in the last 7 days: the cap holds, whatever the cooldown allows.
    assert counts[2] == {"thanks": (0, {"already_received": 2}), "daily": (0, {"frequency_cap": 2})}
    assert [n["plan"]["new_actions"] for n in nights] == [2, 2, 0]
    # Bob's two nudges closed unanswered by the end of 1 May: tagged and rested.
    assert [n["fatigue"] for n in nights] == [
        {"tagged": 0, "recovered": 0},
        {"tagged": 0, "recovered": 0},
        {"tagged": 1, "recovered": 0},
    ]

    again = nightly(d3)  # the same night twice adds nothing
    assert again["plan"]["new_actions"] == 0
    assert again["fatigue"] == {"tagged": 0, "recovered": 0}
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(actions.c.as_of, actions.c.campaign_id, actions.c.state)
        ).all()
        summary = connection.execute(
            sa.select(runs.c.summary).order_by(runs.c.id.desc()).limit(1)
        ).scalar_one()
        tags = connection.execute(
            sa.select(member_tags.c.member_pk, member_tags.c.added_on).where(
                member_tags.c.tag == "nudge-fatigued"
            )
        ).all()
    # Dispatched into the file outbox: one email per action, in the night's folder.
    assert sorted((r.as_of, r.campaign_id, r.state) for r in stored) == [
        (d1, "thanks", "sent"),
        (d1, "thanks", "sent"),
        (d2, "daily", "sent"),
        (d2, "daily", "sent"),
    ]
    outbox = Path(os.environ["NUDGEFLOW_EMAIL__OUTBOX_DIR"])
    assert [len(list((outbox / d.isoformat()).glob("*.eml"))) for d in (d1, d2)] == [2, 2]
    assert summary["plan"]["campaigns"][0]["id"] == "thanks"
    first = {row["id"]: row for row in nights[0]["report"]}
    assert (first["thanks"]["sent"], first["thanks"]["failed"], first["daily"]["sent"]) == (2, 0, 0)
    assert [row["sent"] for row in summary["report"]] == [0, 0]  # nothing new on the re-run
    # Each night published its report as a table and a markdown artifact.
    from prefect.client.orchestration import get_client

    first_run = nights[0]["flow_run_id"]
    # Raw filter request: Prefect 3.8.8's read_artifacts sends null limit/sort, which this
    # server version refuses (422).
    with get_client(sync_client=True) as client:
        published = client.request(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [first_run]}}, "limit": 10},
        ).json()
    kinds = {artifact["key"]: artifact for artifact in published}
    assert set(kinds) == {"nightly-report", "nightly-summary"}
    assert "thanks" in str(kinds["nightly-report"]["data"])
    markdown = str(kinds["nightly-summary"]["data"])
    assert "| thanks |" in markdown and "Sent 2 emails" in markdown
    # Each night wrote its HTML report, and the summary artifact says where.
    report = Path(nights[0]["html_report"])
    assert report == Path(os.environ["NUDGEFLOW_REPORTS_DIR"]) / f"report-{d1.isoformat()}.html"
    assert report.read_text().startswith("<!DOCTYPE html>")
    assert f"`{report}`" in markdown
    assert tags == [(keys["bob"], d3)]
    # Rested from the next night: Bob is excluded as fatigued on 2 May.
    may2 = nightly(date(2026, 5, 2))
    assert _plan_counts(may2)["daily"][1].get("fatigued") == 1
