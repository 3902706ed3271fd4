"""Fatigue: after a night's dispatch, end the rest of members who engaged, then tag those
who ignored every recent nudge (the rules are ``audience.fatigue``; the SQL ``store.fatigue``)."""

from __future__ import annotations

from night.batch import Checkpoint, no_checkpoint
from night.context import Night
from store.fatigue import update_fatigue


def fatigue(night: Night, checkpoint: Checkpoint = no_checkpoint) -> dict[str, int]:
    """Update the fatigue tags as of the night, in one transaction."""
    policy = night.campaigns.policy
    with night.engine.begin() as connection:
        result = update_fatigue(connection, policy, night.as_of, night.end, night.zone)
        checkpoint("during_fatigue_update")
    return {"tagged": result.tagged, "recovered": result.recovered}
