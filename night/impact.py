"""``nudgeflow impact``: did each campaign work, and what did each extra response cost?

``impact_report`` reads the counts of ``store.impact`` (treated and held-out actions planned
in a period, answered or not, their revenue, the ledger's cost) and puts the statistics of
``domain.stats`` on them: per campaign, and per variant when it has variants, the response
rates, the uplift (treated rate − held-out rate) with Newcombe's 95 % interval, revenue per
action with a seeded bootstrap interval, the reward cost (spent and still outstanding) and,
when the uplift's interval lies above zero, the cost per incremental response. Every row
also says in words what can be concluded (``verdict``). A variant is named the winner only
when its interval against every other variant of the campaign lies above zero.

It returns plain dataclasses (``ImpactReport``) for the CLI, the HTML report and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from domain.stats import (
    Interval,
    bootstrap_mean_difference,
    members_needed,
    newcombe_difference,
)
from store.impact import CampaignCounts, GroupCounts, count_impact

# Below this many held-out (or treated) actions no interval is worth quoting as a finding.
MIN_GROUP = 30
EFFECT = 0.05  # the "5-point effect" the sample size is computed for


@dataclass(frozen=True)
class CampaignImpact:
    """One campaign (``variant`` None: all its treated actions) or one of its variants
    (against the campaign's whole control group)."""

    campaign_id: str
    variant: str | None
    treated: int
    held_out: int
    treated_responded: int
    held_out_responded: int
    uplift: Interval | None  # treated rate − held-out rate; None without both groups
    revenue_uplift: Interval | None  # revenue per action, treated − held out, minor units
    spent_minor: int
    outstanding_minor: int
    currency: str
    # Rewards costed in another currency than the report's (not in cost_minor).
    other_costs: tuple[tuple[str, int], ...]
    members_needed_more: int | None  # for a 5-point effect; None when measured
    verdict: str
    winner: bool = False  # a variant that beat every other variant of its campaign

    @property
    def cost_minor(self) -> int:
        return self.spent_minor + self.outstanding_minor

    @property
    def treated_rate(self) -> float | None:
        return self.treated_responded / self.treated if self.treated else None

    @property
    def held_out_rate(self) -> float | None:
        return self.held_out_responded / self.held_out if self.held_out else None

    @property
    def measured(self) -> bool:
        """The uplift's interval lies above zero on groups big enough to read."""
        return (
            self.uplift is not None
            and self.uplift.low > 0
            and min(self.treated, self.held_out) >= MIN_GROUP
        )

    @property
    def cost_per_incremental_response_minor(self) -> int | None:
        """Cost ÷ (uplift × treated): what each response the nudge caused cost."""
        if not self.measured or self.uplift is None:
            return None
        return round(self.cost_minor / (self.uplift.estimate * self.treated))

    def as_dict(self) -> dict[str, Any]:
        uplift, revenue = self.uplift, self.revenue_uplift
        return {
            "id": self.campaign_id,
            "variant": self.variant,
            "treated": self.treated,
            "held_out": self.held_out,
            "treated_responded": self.treated_responded,
            "held_out_responded": self.held_out_responded,
            "treated_rate": self.treated_rate,
            "held_out_rate": self.held_out_rate,
            "uplift": uplift.estimate if uplift else None,
            "uplift_low": uplift.low if uplift else None,
            "uplift_high": uplift.high if uplift else None,
            "revenue_uplift_minor": round(revenue.estimate) if revenue else None,
            "revenue_uplift_low_minor": round(revenue.low) if revenue else None,
            "revenue_uplift_high_minor": round(revenue.high) if revenue else None,
            "cost_minor": self.cost_minor,
            "spent_minor": self.spent_minor,
            "outstanding_minor": self.outstanding_minor,
            "currency": self.currency,
            "other_costs": dict(self.other_costs),
            "cost_per_incremental_response_minor": self.cost_per_incremental_response_minor,
            "measured": self.measured,
            "members_needed_more": self.members_needed_more,
            "winner": self.winner,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class ImpactReport:
    start: date | None
    end: date | None
    currency: str
    campaigns: tuple[CampaignImpact, ...]

    def winner(self, campaign_id: str) -> str | None:
        """The campaign's winning variant, if one beat every other."""
        return next(
            (c.variant for c in self.campaigns if c.campaign_id == campaign_id and c.winner),
            None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "currency": self.currency,
            "campaigns": [c.as_dict() for c in self.campaigns],
        }


def _merged(groups: Sequence[GroupCounts]) -> GroupCounts:
    merged = GroupCounts()
    for g in groups:
        merged.actions += g.actions
        merged.responded += g.responded
        merged.revenue.extend(g.revenue)
    return merged


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


def _verdict(
    treated: GroupCounts, held: GroupCounts, uplift: Interval | None
) -> tuple[str, int | None]:
    """What can be said, in words, and how many more members a 5-point effect needs."""
    if held.actions == 0:
        return "no control group: add eligibility.holdout to measure the effect", None
    if treated.actions == 0:
        return "nothing sent yet", None
    assert uplift is not None
    baseline = held.responded / held.actions
    needed = members_needed(baseline, EFFECT, ratio=treated.actions / held.actions)
    more = max(0, needed - treated.actions - held.actions)
    interval = f"{_points(uplift.low)} to {_points(uplift.high)} points"
    if min(treated.actions, held.actions) >= MIN_GROUP and uplift.excludes_zero:
        direction = "raised" if uplift.low > 0 else "lowered"
        return f"{direction} responses by {_points(uplift.estimate)} points ({interval})", None
    if min(treated.actions, held.actions) < MIN_GROUP:
        reason = (
            f"too few held out ({held.actions:,})"
            if held.actions < MIN_GROUP
            else (f"too few treated ({treated.actions:,})")
        )
        return (
            f"{reason}: no measurable effect yet; about {max(more, 1):,} more members "
            "needed for a 5-point effect",
            max(more, 1),
        )
    if more > 0:
        return (
            f"no measurable effect yet ({interval}); about {more:,} more members needed "
            "for a 5-point effect",
            more,
        )
    return f"no measurable effect ({interval}): a 5-point effect would have shown", 0


def _impact(
    campaign_id: str,
    variant: str | None,
    treated: GroupCounts,
    held: GroupCounts,
    costs: Sequence[CampaignCounts],
    currency: str,
) -> CampaignImpact:
    uplift = revenue = None
    if treated.actions and held.actions:
        uplift = newcombe_difference(
            treated.responded, treated.actions, held.responded, held.actions
        )
        revenue = bootstrap_mean_difference(
            treated.revenue, treated.actions, held.revenue, held.actions
        )
    verdict, more = _verdict(treated, held, uplift)
    spent: dict[str, int] = {}
    outstanding: dict[str, int] = {}
    for c in costs:
        for cur, amount in c.spent_minor.items():
            spent[cur] = spent.get(cur, 0) + amount
        for cur, amount in c.outstanding_minor.items():
            outstanding[cur] = outstanding.get(cur, 0) + amount
    other = {
        cur: spent.get(cur, 0) + outstanding.get(cur, 0)
        for cur in sorted(spent.keys() | outstanding.keys())
        if cur != currency
    }
    return CampaignImpact(
        campaign_id=campaign_id,
        variant=variant,
        treated=treated.actions,
        held_out=held.actions,
        treated_responded=treated.responded,
        held_out_responded=held.responded,
        uplift=uplift,
        revenue_uplift=revenue,
        spent_minor=spent.get(currency, 0),
        outstanding_minor=outstanding.get(currency, 0),
        currency=currency,
        other_costs=tuple(other.items()),
        members_needed_more=more,
        verdict=verdict,
    )


def _winner(variants: dict[str, GroupCounts]) -> str | None:
    """The variant whose response rate beats every other's with an interval above zero."""
    for name, group in variants.items():
        others = [g for other, g in variants.items() if other != name]
        if group.actions and all(
            o.actions
            and newcombe_difference(group.responded, group.actions, o.responded, o.actions).low > 0
            for o in others
        ):
            return name
    return None


def _campaign(rows: Sequence[CampaignCounts], currency: str) -> list[CampaignImpact]:
    campaign_id = rows[0].campaign_id
    held = _merged([r.held_out for r in rows])
    treated_all = _merged([r.treated for r in rows])
    out = [_impact(campaign_id, None, treated_all, held, rows, currency)]
    variants = {r.variant: r.treated for r in rows if r.variant is not None}
    if not variants:
        return out
    best = _winner(variants) if len(variants) > 1 else None
    for r in rows:
        if r.variant is None:
            continue
        row = _impact(campaign_id, r.variant, r.treated, held, [r], currency)
        if r.variant == best:
            row = _with_winner(row)
        out.append(row)
    return out


def _with_winner(row: CampaignImpact) -> CampaignImpact:
    return replace(row, winner=True, verdict=f"{row.verdict}; the winner among the variants")


def impact_report(
    engine: Engine,
    *,
    start: date | None,
    end: date | None,
    campaign: str | None = None,
    zone: ZoneInfo | None = None,
    currency: str,
) -> ImpactReport:
    """Impact of every campaign (or ``campaign``) over the actions planned from ``start`` to
    ``end`` (business dates, inclusive; None: unbounded). ``zone`` is accepted for the
    callers' symmetry: the actions' windows are stored as instants, so it is not needed."""
    with engine.connect() as connection:
        counted = count_impact(
            connection, start=start, end=end, campaign=campaign, currency=currency
        )
    by_campaign: dict[str, list[CampaignCounts]] = {}
    for row in counted:
        by_campaign.setdefault(row.campaign_id, []).append(row)
    rows: list[CampaignImpact] = []
    for campaign_rows in by_campaign.values():
        rows.extend(_campaign(campaign_rows, currency))
    return ImpactReport(start, end, currency, tuple(rows))
