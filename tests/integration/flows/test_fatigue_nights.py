"""Fatigue across real nights of the ``nightly`` flow, for a member nudged every night with a
one-day response window: tagged once enough of those windows have closed unanswered, rested
the next night, and selected again the very night they respond (recovery runs before the
plan). A dry run of that night agrees with the run and keeps nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from bootstrap.app import process_app
from nudgeflow.timeutil import day_end, day_start
from store.schema import actions, member_tags
from store.tags import CLEARED, TAGGED, tag_changes
from tests.integration.community import DAY, Person, add_events, insert_people

ROOT = Path(__file__).resolve().parents[3]
PARIS = ZoneInfo("Europe/Paris")
pytestmark = pytest.mark.prefect

DAILY = """
id: daily
name: Daily tip
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {cooldown: 1d}
email: {template: adopter_welcome, subject: A tip}
response: {counts_as: [email_clicked], within: 1d}
"""
POLICY = "fatigue: {unanswered_nudges: 2, rest_for: 10d}\n"
D1 = date(2026, 5, 4)
NIGHTS = [D1 + timedelta(days=n) for n in range(5)]


@pytest.fixture
def daily_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app on a campaigns folder holding one daily campaign and the fatigue policy."""
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "lifecycle.yaml").write_text((ROOT / "campaigns/lifecycle.yaml").read_text())
    (folder / "daily.yaml").write_text(DAILY)
    (folder / "policy.yaml").write_text(POLICY)
    monkeypatch.setenv("NUDGEFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("NUDGEFLOW_CAMPAIGNS_DIR", str(folder))
    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("NUDGEFLOW_EMAIL__OUTBOX_DIR", str(tmp_path / "outbox"))
    process_app.cache_clear()
    yield db_url
    process_app().engine.dispose()
    process_app.cache_clear()


def _daily(night: dict[str, Any]) -> tuple[int, dict[str, int]]:
    (daily,) = night["plan"]["campaigns"]
    return daily["selected"], {r: n for r, n in daily["excluded"].items() if n}


def _tag(engine: sa.Engine) -> tuple[date, date]:
    with engine.connect() as connection:
        row = connection.execute(sa.select(member_tags.c.added_on, member_tags.c.expires_on)).one()
    return row.added_on, row.expires_on


def test_a_daily_nudge_tags_after_its_windows_close_and_a_response_frees_that_night(
    prefect_harness: None, daily_env: str
) -> None:
    from flows.nightly import backfill, nightly

    d1, d2, d3, d4, d5 = NIGHTS
    old = day_end(d1, PARIS) - 100 * DAY
    engine = process_app().engine
    with engine.begin() as connection:
        keys = insert_people(
            connection, [Person("bob", None, [EventFact("purchase", old, 1000, "USD")])]
        )
        # Bob answers nothing, then clicks on the fifth day (after his last nudge's window).
        add_events(
            connection,
            keys,
            [("bob", EventFact("email_clicked", day_start(d5, PARIS) + 12 * 3600))],
        )

    nights = backfill(d1, d4)
    assert [_daily(n) for n in nights] == [(1, {}), (1, {}), (1, {}), (0, {"fatigued": 1})]
    # On d3 the windows of d1's and d2's nudges have closed unanswered (d3's is still open).
    assert [n["fatigue"] for n in nights] == [
        {"tagged": 0, "recovered": 0},
        {"tagged": 0, "recovered": 0},
        {"tagged": 1, "recovered": 0},
        {"tagged": 0, "recovered": 0},
    ]
    assert _tag(engine) == (d3, d3 + timedelta(days=9))

    # A dry run of d5 rehearses the recovery, so it plans what the run will: Bob selected.
    rehearsal = nightly(d5, dry_run=True)
    assert _daily(rehearsal) == (1, {})
    assert _tag(engine) == (d3, d3 + timedelta(days=9))  # …and keeps nothing

    # The run clears his tag before it plans, and selects him the same night.
    fifth = nightly(d5)
    assert _daily(fifth) == (1, {})
    assert fifth["fatigue"] == {"tagged": 0, "recovered": 1}
    assert _tag(engine) == (d3, d4)
    with engine.connect() as connection:
        sent = connection.execute(
            sa.select(actions.c.as_of).where(actions.c.state == "sent").order_by(actions.c.as_of)
        ).scalars()
        assert list(sent) == [d1, d2, d3, d5]
        history = tag_changes(connection, keys["bob"])
    assert [(c.change, c.as_of, c.rest_until) for c in history] == [
        (TAGGED, d3, d3 + timedelta(days=9)),
        (CLEARED, d5, None),
    ]
