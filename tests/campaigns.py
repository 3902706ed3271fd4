"""A compiled campaign with every field at a neutral default, for tests of pure code."""

from __future__ import annotations

import dataclasses
from typing import Any

from audience.criteria import Audience
from audience.rules import ALWAYS
from domain.campaign import Campaign, Trigger


def make_campaign(campaign_id: str = "c", **changes: Any) -> Campaign:
    """A schedule campaign for everyone, once per member, no reward; ``changes`` override."""
    base = Campaign(
        id=campaign_id,
        name=campaign_id,
        source=f"campaigns/{campaign_id}.yaml",
        enabled=True,
        priority=0,
        audience=Audience(rule=ALWAYS),
        trigger=Trigger("schedule"),
        once_per_member=True,
        cooldown_days=None,
        holdout_percent=0.0,
        holdout_salt="",
        max_per_run=None,
        reward=None,
        budget=None,
        template="t",
        subject="s",
        response_types=("email_clicked",),
        response_within_days=7,
    )
    return dataclasses.replace(base, **changes)
