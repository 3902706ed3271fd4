"""Which completed nights a run would rewind, and when it is refused (both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from night.runs import RewindRefused, nights_to_rewind
from store.runs import finish_run, start_run

NOW = datetime(2026, 5, 10, tzinfo=UTC)


def completed(engine: sa.Engine, *days: date) -> None:
    with engine.begin() as connection:
        for day in days:
            run_id = start_run(connection, day, "nightly", None, now=NOW)
            finish_run(connection, run_id, "completed", now=NOW)


def test_an_earlier_night_is_refused_naming_the_later_ones(engine: sa.Engine) -> None:
    completed(engine, date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 3))
    with pytest.raises(RewindRefused, match=r"\(2026-05-02, 2026-05-03\).*--rewind"):
        nights_to_rewind(engine, date(2026, 5, 1), rewind=False)
    assert nights_to_rewind(engine, date(2026, 5, 1), rewind=True) == [
        date(2026, 5, 2),
        date(2026, 5, 3),
    ]
    assert nights_to_rewind(engine, date(2026, 5, 3), rewind=False) == []  # the latest again


def test_a_catch_up_re_runs_its_own_range_and_is_refused_only_for_nights_after_it(
    engine: sa.Engine,
) -> None:
    completed(engine, date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 3))
    start, through = date(2026, 5, 1), date(2026, 5, 3)
    assert nights_to_rewind(engine, start, rewind=False, through=through) == []
    with pytest.raises(RewindRefused, match=r"\(2026-05-03\)"):
        nights_to_rewind(engine, start, rewind=False, through=date(2026, 5, 2))
