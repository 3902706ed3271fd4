"""The keys that make a nudge unique (pure): its occurrence and its action id.

The planner computes them when it plans, the store when it gathers what each member already
received, and both must agree, so they live here, beneath both.
"""

from __future__ import annotations

import hashlib
from datetime import date

from domain.campaign import Campaign

SEP = "\x1f"  # ASCII unit separator: cannot occur in ids, so joins are unambiguous


def occurrence_for(campaign: Campaign, as_of: date) -> str:
    """What makes two sends of ``campaign`` to one member different."""
    kind = campaign.occurrence_kind
    if kind == "year":
        return str(as_of.year)
    if kind == "once":
        return "once"
    return as_of.isoformat()


def action_id(campaign_id: str, member_id: str, occurrence: str) -> str:
    """The deterministic id of an action: planning the same night twice yields the same ids."""
    key = SEP.join((campaign_id, member_id, occurrence)).encode()
    return hashlib.sha256(key).hexdigest()[:32]
