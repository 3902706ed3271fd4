"""Refresh: recompute every member's stage, stage history, RFM and score for the night, in
one set-based transaction, and supersede the runs of later nights it invalidates."""

from __future__ import annotations

from night.context import Night
from store.profiles import refresh_profiles
from store.runs import supersede_later_runs


def refresh(night: Night) -> dict[str, int]:
    """Refresh every profile as of the night; return the members counted and how many had no
    earlier profile (``initial``)."""
    with night.engine.begin() as connection:
        result = refresh_profiles(
            connection, night.campaigns.lifecycle, night.as_of, night.end, night.currency
        )
        supersede_later_runs(connection, night.as_of)
    return {"members": result.members, "initial": result.initial}
