"""``Night``: one business night and what its steps need, built once per run by the
composition root (``bootstrap``) and handed to every step as a value.

The campaign set is loaded once per run and travels in it; so do the engine, the business
time zone and the one clock. No step reads settings, files or the time of day itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from domain.provenance import Provenance
from nudgeflow.timeutil import Clock, day_end
from planning.campaign_files import CampaignSet


@dataclass(frozen=True)
class Night:
    """The business date ``as_of`` and everything its steps work with."""

    as_of: date
    engine: Engine
    campaigns: CampaignSet
    zone: ZoneInfo
    currency: str  # the settings' default currency, for profiles' monetary figures
    clock: Clock
    batch_size: int = 200  # actions per dispatch batch (a Prefect task each)
    # The campaign and template files the run works from (``night.provenance``): the run
    # and the actions it plans record their digest. None: not recorded (tests).
    provenance: Provenance | None = None

    @property
    def end(self) -> int:
        """The instant (epoch seconds) the business day ends: "as of" means before it."""
        return day_end(self.as_of, self.zone)
