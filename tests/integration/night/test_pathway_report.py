"""``pathway_report`` on a crafted community, on SQLite and PostgreSQL: every figure known."""

from __future__ import annotations

import statistics

import sqlalchemy as sa

from audience.pathways import PathwaySpec
from night.pathways import pathway_report
from nudgeflow.timeutil import day_start
from tests.integration import pathway_community as pc


def test_figures_of_a_crafted_community(engine: sa.Engine) -> None:
    pc.build(engine)
    [figures] = pathway_report(engine, [pc.pathway()], as_of=pc.AS_OF, zone=pc.ZONE)
    assert figures.started == 4  # m1, m2, m3 (via advocate), m6
    assert [(a.id, a.completed, a.share) for a in figures.key_actions] == [
        ("answered", 2, 0.5),  # m1 (the answer before the start does not count), m2
        ("guest-post", 2, 0.5),  # m1, m3
    ]
    assert (figures.ended, figures.ended_share) == (2, 0.5)  # m1, m3
    m1 = pc.at(2026, 4, 10) - day_start(pc.date(2026, 3, 1), pc.ZONE)
    m3 = pc.at(2026, 4, 4) - day_start(pc.date(2026, 4, 1), pc.ZONE)
    assert figures.median_days_to_end == round(statistics.median([m1, m3]) / 86_400, 2)
    purchases, retained = figures.indicators
    assert (purchases.members_on, purchases.members_off) == (4, 2)
    assert (purchases.on_pathway, purchases.off_pathway) == (0.75, 2.0)
    assert (retained.on_pathway, retained.off_pathway) == (0.25, 1.0)


def test_an_empty_store_has_nothing_started(engine: sa.Engine) -> None:
    [figures] = pathway_report(engine, [pc.pathway()], as_of=pc.AS_OF, zone=pc.ZONE)
    assert (figures.started, figures.ended, figures.ended_share) == (0, 0, None)
    assert figures.median_days_to_end is None
    assert all(a.share is None for a in figures.key_actions)
    assert figures.indicators[0].on_pathway is None


def test_an_event_start_counts_from_the_min_th_event(engine: sa.Engine) -> None:
    pc.build(engine)
    spec = dict(pc.PATHWAY_FILE, start={"events": {"type": "answer_posted", "min": 2}})
    pathway = PathwaySpec.model_validate(spec).compile(pc.STAGES)
    [figures] = pathway_report(engine, [pathway], as_of=pc.AS_OF, zone=pc.ZONE)
    # Only m1 has two answers. From the second (the start itself counts, as every step
    # reached at the start instant does): that answer, a guest post and a review: the end.
    assert figures.started == 1
    assert [a.completed for a in figures.key_actions] == [1, 1]
    assert figures.ended == 1


def test_stage_days_begin_at_local_midnight_across_a_dst_change() -> None:
    """The SQL offset table agrees with the time zone on both sides of the March change."""
    from store.pathways_sql import DayClock

    clock = DayClock(pc.ZONE, pc.date(2026, 3, 1), pc.date(2026, 4, 30))
    runs = clock._offsets()
    assert [(day.isoformat(), offset) for day, offset in runs] == [
        ("2026-03-01", 3600),
        ("2026-03-30", 7200),  # midnight on the 29th is before the 02:00 change
    ]
