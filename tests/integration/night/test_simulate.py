"""``night.simulate``: a backtest on a scratch copy, on SQLite and PostgreSQL. The crafted
community of ``simulate_world`` gives known counts night by night; the real database is
left exactly as it was (its bytes on SQLite, every row of every table on PostgreSQL); the
nights a real run already stored in the period are replaced, not added to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from domain.backtest import TOTAL
from night.context import Night
from night.fatigue import recover_rested, tag_unanswered
from night.plan import plan
from night.refresh import refresh
from night.runs import close_run, open_run
from night.simulate import Backtest, SimulationError, compare_sets, load_campaigns, simulate
from nudgeflow.errors import StoreError
from planning.campaign_files import CampaignSet
from store.backtest import mark_night_sent
from store.engine import create_store_engine
from store.schema import actions, member_tag_history, member_tags, runs
from tests.integration.simulate_world import (
    EXPECTED_A,
    N1,
    N3,
    N4,
    N5,
    NIGHTS,
    W19,
    W20,
    ZONE,
    database_fingerprint,
    populate,
    write_folders,
)

NOW = datetime(2026, 5, 20, tzinfo=UTC)


def clock() -> datetime:
    return NOW


@pytest.fixture
def folders(tmp_path: Path) -> tuple[CampaignSet, CampaignSet]:
    a, b = write_folders(tmp_path)
    return load_campaigns(a, "--campaigns"), load_campaigns(b, "--compare")


def run(engine: sa.Engine, campaigns: CampaignSet, start: date, end: date) -> Backtest:
    return simulate(
        engine, campaigns, start, end, folder="A", zone=ZONE, currency="USD", clock=clock
    )


def figures(backtest: Backtest) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (c.campaign_id, w.week): {
            "selected": w.selected,
            "excluded": w.excluded,
            "fatigue_tags": w.fatigue_tags,
        }
        for c in backtest.campaigns
        for w in (*c.weeks, c.total)
    }


def real_night(engine: sa.Engine, campaigns: CampaignSet, day: date) -> None:
    """A night as a real run leaves it (dispatch aside): actions, tags, the run record."""
    night = Night(day, engine, campaigns, ZONE, "USD", clock)
    opened = open_run(engine, day, "nightly", None, clock)
    refresh(night)
    recover_rested(night)
    plan(night)
    with engine.begin() as connection:
        mark_night_sent(connection, day, NOW)
    tag_unanswered(night)
    close_run(engine, opened.run_id, "completed", clock)


def test_the_backtest_counts_what_the_nights_would_do_and_changes_nothing(
    engine: sa.Engine, folders: tuple[CampaignSet, CampaignSet]
) -> None:
    with engine.begin() as connection:
        populate(connection)
    before = database_fingerprint(engine)
    backtest = run(engine, folders[0], N1, N5)
    assert database_fingerprint(engine) == before
    assert figures(backtest) == EXPECTED_A
    assert backtest.nights == 5 and backtest.replaced_actions == 0
    gift = next(c for c in backtest.campaigns if c.campaign_id == "gift")
    week19, week20 = gift.weeks
    assert (week19.week, week19.nights, week20.nights) == (W19, 3, 2)
    assert (week19.cost_minor, week19.currency, week19.budget_left_minor) == (1000, "USD", 0)
    assert (week20.cost_minor, week20.budget_left_minor) == (0, 0)
    assert gift.total.cost_minor == 1000
    assert backtest.budgets == {"gift": "10.00 USD per month"}
    document = backtest.as_dict()
    assert document["assumption"].startswith("assumes no new responses")
    with engine.connect() as connection:  # nothing was written to the real database
        assert connection.execute(sa.select(sa.func.count()).select_from(actions)).scalar() == 0


def test_two_folders_side_by_side(
    engine: sa.Engine, folders: tuple[CampaignSet, CampaignSet]
) -> None:
    with engine.begin() as connection:
        populate(connection)
    a = run(engine, folders[0], N1, N5)
    b = run(engine, folders[1], N1, N5)
    rows = {(r.campaign_id, r.week, r.measure): r for r in compare_sets(a, b).rows}
    selected = rows[("gift", W19, "selected")]
    assert (selected.a, selected.b, selected.difference) == (2, 3, 1)
    budget = rows[("gift", TOTAL, "excluded: budget")]
    assert (budget.a, budget.b, budget.difference) == (5, 0, -5)
    cost = rows[("gift", TOTAL, "reward cost")]
    assert (cost.a, cost.b, cost.difference, cost.currency) == (1000, 1500, 500, "USD")
    daily = rows[("daily", TOTAL, "selected")]
    assert (daily.a, daily.b, daily.difference) == (4, None, -4)  # B has no daily campaign


def test_real_nights_in_the_period_are_replaced_and_earlier_ones_kept(
    engine: sa.Engine, folders: tuple[CampaignSet, CampaignSet]
) -> None:
    campaigns = folders[0]
    with engine.begin() as connection:
        populate(connection)
    for day in NIGHTS:  # every night really run: tags on N3, ann's rest ended on N5
        real_night(engine, campaigns, day)
    before = database_fingerprint(engine)

    # From N4: N1–N3 stay as they were (both rest from N3), N4 and N5 are replayed.
    later = run(engine, campaigns, N4, N5)
    assert database_fingerprint(engine) == before
    expected = {k: v for k, v in EXPECTED_A.items() if k[1] == W20}
    assert {k: v for k, v in figures(later).items() if k[1] == W20} == expected
    assert later.replaced_actions == 0  # N4 and N5 nudged nobody; their tag changes go
    # From N3: the rests the real N3 began are taken back, so the replayed N3 begins them.
    third = figures(run(engine, campaigns, N3, N5))
    assert third[("daily", W19)] == {
        "selected": 0,
        "excluded": {"frequency_cap": 2},
        "fatigue_tags": 2,
    }
    assert third[("daily", W20)] == EXPECTED_A[("daily", W20)]
    # From N1 the whole period is replayed over nothing: as on a database never run.
    whole = run(engine, campaigns, N1, N5)
    assert figures(whole) == EXPECTED_A
    with engine.connect() as connection:
        stored = connection.execute(sa.select(sa.func.count()).select_from(actions)).scalar()
        assert whole.replaced_actions == stored == 6  # N1: four, N2: ann and bob
        assert connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 5
        assert connection.execute(
            sa.select(sa.func.count()).select_from(member_tag_history)
        ).scalar()
        assert connection.execute(sa.select(sa.func.count()).select_from(member_tags)).scalar()
    assert database_fingerprint(engine) == before


def test_dates_and_folders_are_checked(tmp_path: Path, engine: sa.Engine) -> None:
    with pytest.raises(SimulationError, match=r"^--to 2026-05-07 is before --from 2026-05-08$"):
        run(engine, load_campaigns(write_folders(tmp_path)[0], "--campaigns"), N1, date(2026, 5, 7))
    with pytest.raises(SimulationError, match=r"^--compare .*nowhere: no such folder$"):
        load_campaigns(tmp_path / "nowhere", "--compare")
    broken = tmp_path / "campaigns-a"
    (broken / "gift.yaml").write_text("id: gift\nname: x\npriority: high\n")
    with pytest.raises(SimulationError, match=r"gift\.yaml:\d+:\d+: .*validate lists every"):
        load_campaigns(broken, "--campaigns")


def test_the_copy_is_deleted_when_a_night_fails_or_is_interrupted(
    engine: sa.Engine, folders: tuple[CampaignSet, CampaignSet], monkeypatch: pytest.MonkeyPatch
) -> None:
    import night.simulate as module

    with engine.begin() as connection:
        populate(connection)
    before = database_fingerprint(engine)
    copies: list[sa.URL] = []
    real_copy = module.scratch_copy

    @contextmanager
    def recorded(source: sa.Engine) -> Iterator[sa.Engine]:
        with real_copy(source) as scratch:
            copies.append(scratch.url)
            yield scratch

    nights = 0

    def stopping_plan(night: Night) -> dict[str, Any]:
        nonlocal nights
        nights += 1
        if nights == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second night
        return plan(night)

    monkeypatch.setattr(module, "scratch_copy", recorded)
    monkeypatch.setattr(module, "plan", stopping_plan)
    with pytest.raises(KeyboardInterrupt):
        run(engine, folders[0], N1, N5)
    (url,) = copies
    if url.get_backend_name() == "sqlite":
        assert not Path(url.database or "").parent.exists()
    else:
        with engine.connect() as connection:
            left = connection.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                {"name": url.database},
            ).scalar()
        assert left == 0
    assert database_fingerprint(engine) == before


@pytest.mark.postgres
def test_a_role_that_may_not_create_databases_is_told_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import POSTGRES_URL

    if not POSTGRES_URL:
        pytest.skip("NUDGEFLOW_TEST_POSTGRES_URL is not set")
    admin = create_store_engine(POSTGRES_URL)
    role = f"nocreatedb_{uuid.uuid4().hex[:8]}"
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOCREATEDB")
    limited = create_store_engine(
        sa.make_url(POSTGRES_URL).set(username=role).render_as_string(hide_password=False)
    )
    try:
        campaigns = load_campaigns(write_folders(tmp_path)[0], "--campaigns")
        with pytest.raises(StoreError, match=r"scratch database .*CREATEDB"):
            run(limited, campaigns, N1, N5)
    finally:
        limited.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()
