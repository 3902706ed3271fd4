"""A dry run: the night exactly as the run would do it — refresh, fatigue recovery and plan
— inside one transaction that is rolled back, so nothing at all is written (no profiles, no
stage history, no actions, no run record, no lease); the report says what the run would
send and issue, held-out members included."""

from __future__ import annotations

from typing import Any

from night.context import Night
from night.plan import rehearse_plan, summarize_plan
from night.report import planned_report
from store.profiles import funnel, refresh_profiles


def rehearse_night(night: Night) -> dict[str, Any]:
    """The summary of what the night would do; the database is left exactly as it was."""
    with night.engine.connect() as connection:
        transaction = connection.begin()
        try:
            refreshed = refresh_profiles(
                connection, night.campaigns.lifecycle, night.as_of, night.end, night.currency
            )
            stored = rehearse_plan(connection, night.campaigns, night.as_of, night.end, night.zone)
            stages = funnel(connection, night.as_of)
        finally:
            transaction.rollback()
    return {
        **stages,
        "dry_run": True,
        "members": refreshed.members,
        "plan": summarize_plan(stored.plan, None),
        "report": planned_report(stored.plan),
    }
