"""``nudgeflow pathways``: how far members have come on each pathway, as of a date.

``pathway_report`` is the use case (the CLI and the HTML report call it): per pathway, the
members who started it, each key action's completions and share of those started, the
members who reached the end and the median days it took, and each indicator for the members
on the pathway (started it) against the members not on it. Plain dataclasses out; every
figure comes from set-based SQL in ``store.pathways_sql``, in one read-only transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from audience.pathways import Pathway
from nudgeflow.timeutil import day_end
from planning.campaign_files import CampaignSet
from store.pathways_sql import Night, indicator_sums, progress


@dataclass(frozen=True)
class KeyActionFigures:
    id: str
    name: str
    completed: int  # members who completed it since starting the pathway
    share: float | None  # completed ÷ started (None: nobody started)


@dataclass(frozen=True)
class IndicatorFigures:
    """``kind`` events: events per member; retention: the share of members with one."""

    id: str
    name: str
    kind: str
    on_pathway: float | None  # per member on the pathway (None: no such member)
    off_pathway: float | None
    members_on: int
    members_off: int


@dataclass(frozen=True)
class PathwayFigures:
    id: str
    name: str
    target_impact: str
    as_of: date
    started: int
    key_actions: tuple[KeyActionFigures, ...]
    ended: int  # members who reached the end
    ended_share: float | None
    median_days_to_end: float | None  # over the members who reached the end
    indicators: tuple[IndicatorFigures, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "target_impact": self.target_impact,
            "as_of": self.as_of.isoformat(),
            "started": self.started,
            "key_actions": [vars(a) for a in self.key_actions],
            "ended": self.ended,
            "ended_share": self.ended_share,
            "median_days_to_end": self.median_days_to_end,
            "indicators": [vars(i) for i in self.indicators],
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def pathway_report(
    engine: Engine,
    campaign_set_or_pathways: CampaignSet | Sequence[Pathway],
    *,
    as_of: date,
    zone: ZoneInfo,
) -> list[PathwayFigures]:
    """The figures of every pathway as of the end of business day ``as_of`` in ``zone``."""
    pathways = (
        campaign_set_or_pathways.pathways
        if isinstance(campaign_set_or_pathways, CampaignSet)
        else tuple(campaign_set_or_pathways)
    )
    figures = []
    with engine.connect() as connection:
        night = Night.of(connection, as_of, day_end(as_of, zone), zone)
        for pathway in pathways:
            counts = progress(connection, pathway, night)
            actions = tuple(
                KeyActionFigures(a.id, a.name, done, _share(done, counts.started))
                for a, done in zip(pathway.key_actions, counts.completed, strict=True)
            )
            indicators = []
            for indicator in pathway.indicators:
                sums = indicator_sums(
                    connection,
                    pathway,
                    night,
                    indicator.types,
                    indicator.within_days,
                    retention=indicator.kind == "retention",
                )
                indicators.append(
                    IndicatorFigures(
                        indicator.id,
                        indicator.name,
                        indicator.kind,
                        _share(sums.total_on, sums.members_on),
                        _share(sums.total_off, sums.members_off),
                        sums.members_on,
                        sums.members_off,
                    )
                )
            figures.append(
                PathwayFigures(
                    id=pathway.id,
                    name=pathway.name,
                    target_impact=pathway.target_impact,
                    as_of=as_of,
                    started=counts.started,
                    key_actions=actions,
                    ended=counts.ended,
                    ended_share=_share(counts.ended, counts.started),
                    median_days_to_end=counts.median_days_to_end,
                    indicators=tuple(indicators),
                )
            )
    return figures
