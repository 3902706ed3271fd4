"""Fatigue, in two steps around the night's plan and dispatch (the rules are
``audience.fatigue``; the SQL ``store.fatigue``).

``recover_rested`` runs before the plan: a resting member who responded since their rest
began has the tag cleared, so tonight's plan can select them. ``tag_unanswered`` runs after
dispatch, once tonight's nudges are stored: members whose recent closed nudges all went
unanswered are tagged and rest from the next night.
"""

from __future__ import annotations

from night.batch import Checkpoint, no_checkpoint
from night.context import Night
from store.fatigue import recover_fatigued, tag_fatigued


def recover_rested(night: Night) -> int:
    """Clear the fatigue tag of every resting member who responded, in one transaction;
    return how many."""
    with night.engine.begin() as connection:
        return recover_fatigued(
            connection, night.campaigns.policy, night.as_of, night.end, night.zone
        )


def tag_unanswered(night: Night, checkpoint: Checkpoint = no_checkpoint) -> int:
    """Tag the members who ignored their recent nudges, in one transaction; return how many."""
    with night.engine.begin() as connection:
        tagged = tag_fatigued(
            connection, night.campaigns.policy, night.as_of, night.end, night.zone
        )
        checkpoint("during_fatigue_update")
    return tagged
