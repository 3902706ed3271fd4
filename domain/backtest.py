"""A backtest's figures, pure: what each simulated night did per campaign, summed per ISO
week, and two backtests of the same nights side by side (``nudgeflow simulate``; the nights
themselves are run by ``night.simulate``).

A week's ``selected`` and ``held_out`` add up the nights' figures: a member selected on two
nights of the week counts twice, as two nudges. ``budget_left`` is what the campaign's
budget had left after the week's last simulated night (``None``: no budget).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from nudgeflow.money import format_minor_units

FREQUENCY_CAP = "frequency_cap"
HOLDOUT = "holdout"
TOTAL = "total"
# Fatigue tags of members whose newest nudge came from a campaign outside the simulated set
# (an action stored before the first simulated night).
EARLIER_NUDGES = "(nudges before the simulation)"


def iso_week(day: date) -> str:
    """``2026-W45``: the ISO year and week of ``day`` (weeks start on Monday)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class CampaignNight:
    """One campaign on one simulated night."""

    campaign_id: str
    as_of: date
    matched: int = 0
    selected: int = 0
    held_out: int = 0
    excluded: Mapping[str, int] = field(default_factory=dict)  # every reason but the holdout
    cost_minor: int = 0  # the rewards of the night's nudges (what dispatch would reserve)
    currency: str | None = None
    budget_left_minor: int | None = None  # after the night; None without a budget
    fatigue_tags: int = 0  # members tagged that night whose newest nudge was this campaign's


@dataclass(frozen=True)
class WeekFigures:
    """One campaign over one ISO week of the simulation (or ``TOTAL``: every night)."""

    campaign_id: str
    week: str
    first: date
    last: date
    nights: int
    matched: int
    selected: int
    held_out: int
    excluded: dict[str, int]  # by reason, the holdout apart, only reasons that removed someone
    fatigue_tags: int
    cost_minor: int
    currency: str | None
    budget_left_minor: int | None

    @property
    def frequency_caps_hit(self) -> int:
        return self.excluded.get(FREQUENCY_CAP, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "nights": self.nights,
            "matched": self.matched,
            "selected": self.selected,
            "held_out": self.held_out,
            "excluded": dict(self.excluded),
            "frequency_caps_hit": self.frequency_caps_hit,
            "fatigue_tags": self.fatigue_tags,
            "cost": _money(self.cost_minor, self.currency),
            "budget_left": _money(self.budget_left_minor, self.currency),
        }


def _money(minor: int | None, currency: str | None) -> dict[str, Any] | None:
    if minor is None or currency is None:
        return None if minor is None else {"minor": minor, "currency": None}
    text = f"{format_minor_units(minor, currency)} {currency}"
    return {"minor": minor, "currency": currency, "text": text}


def _sum(campaign_id: str, week: str, nights: Sequence[CampaignNight]) -> WeekFigures:
    ordered = sorted(nights, key=lambda n: n.as_of)
    excluded: dict[str, int] = {}
    for night in ordered:  # every reason in the planner's order, zeros dropped below
        for reason, count in night.excluded.items():
            if reason != HOLDOUT:
                excluded[reason] = excluded.get(reason, 0) + count
    excluded = {reason: count for reason, count in excluded.items() if count}
    currency = next((n.currency for n in ordered if n.currency is not None), None)
    return WeekFigures(
        campaign_id=campaign_id,
        week=week,
        first=ordered[0].as_of,
        last=ordered[-1].as_of,
        nights=len({n.as_of for n in ordered}),
        matched=sum(n.matched for n in ordered),
        selected=sum(n.selected for n in ordered),
        held_out=sum(n.held_out for n in ordered),
        excluded=excluded,
        fatigue_tags=sum(n.fatigue_tags for n in ordered),
        cost_minor=sum(n.cost_minor for n in ordered),
        currency=currency,
        budget_left_minor=ordered[-1].budget_left_minor,
    )


@dataclass(frozen=True)
class CampaignSummary:
    """A campaign's weeks, in order, and its total over every simulated night."""

    campaign_id: str
    weeks: tuple[WeekFigures, ...]
    total: WeekFigures

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.campaign_id,
            "weeks": [w.as_dict() for w in self.weeks],
            "total": self.total.as_dict(),
        }


def summarise(nights: Iterable[CampaignNight], order: Sequence[str] = ()) -> list[CampaignSummary]:
    """Per campaign (in ``order``, then any others by id) and ISO week, the nights summed."""
    by_campaign: dict[str, list[CampaignNight]] = {}
    for night in nights:
        by_campaign.setdefault(night.campaign_id, []).append(night)
    ids = [c for c in order if c in by_campaign]
    ids += sorted(c for c in by_campaign if c not in ids)
    summaries = []
    for campaign_id in ids:
        rows = by_campaign[campaign_id]
        weeks: dict[str, list[CampaignNight]] = {}
        for night in sorted(rows, key=lambda n: n.as_of):
            weeks.setdefault(iso_week(night.as_of), []).append(night)
        summaries.append(
            CampaignSummary(
                campaign_id,
                tuple(_sum(campaign_id, week, group) for week, group in weeks.items()),
                _sum(campaign_id, TOTAL, rows),
            )
        )
    return summaries


# --- two campaign sets side by side -----------------------------------------------------


@dataclass(frozen=True)
class Compared:
    """One measure of one campaign and week in both backtests (``None``: the campaign is
    not in that set), and the difference ``b - a`` (a missing side counts as 0)."""

    campaign_id: str
    week: str
    measure: str
    a: int | None
    b: int | None
    currency: str | None = None  # for the cost

    @property
    def difference(self) -> int:
        return (self.b or 0) - (self.a or 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign_id,
            "week": self.week,
            "measure": self.measure,
            "a": self.a,
            "b": self.b,
            "difference": self.difference,
            "currency": self.currency,
        }


def _measures(figures: WeekFigures | None, reasons: Sequence[str]) -> dict[str, int] | None:
    if figures is None:
        return None
    values = {"selected": figures.selected, "held out": figures.held_out}
    for reason in reasons:
        values[f"excluded: {reason}"] = figures.excluded.get(reason, 0)
    values["fatigue tags"] = figures.fatigue_tags
    values["reward cost"] = figures.cost_minor
    return values


def _rows(summary: CampaignSummary | None) -> dict[str, WeekFigures]:
    if summary is None:
        return {}
    return {**{w.week: w for w in summary.weeks}, TOTAL: summary.total}


def compare(a: Sequence[CampaignSummary], b: Sequence[CampaignSummary]) -> list[Compared]:
    """Every measure of every campaign and week of either backtest, ``a`` beside ``b``:
    selected, held out, each exclusion reason that removed someone on either side (the
    frequency cap among them), fatigue tags and reward cost, then the campaign's total."""
    by_a = {s.campaign_id: s for s in a}
    by_b = {s.campaign_id: s for s in b}
    ids = [s.campaign_id for s in a] + [s.campaign_id for s in b if s.campaign_id not in by_a]
    compared: list[Compared] = []
    for campaign_id in ids:
        weeks_a, weeks_b = _rows(by_a.get(campaign_id)), _rows(by_b.get(campaign_id))
        weeks = [*sorted((set(weeks_a) | set(weeks_b)) - {TOTAL}), TOTAL]
        reasons = sorted(
            {r for w in (*weeks_a.values(), *weeks_b.values()) for r, n in w.excluded.items() if n}
        )
        in_a, in_b = campaign_id in by_a, campaign_id in by_b
        for week in weeks:
            fa, fb = weeks_a.get(week), weeks_b.get(week)
            # A week the campaign had no night in, in a set that has the campaign: zeros.
            va = _measures(fa, reasons) or ({} if in_a else None)
            vb = _measures(fb, reasons) or ({} if in_b else None)
            currency = next((f.currency for f in (fa, fb) if f and f.currency), None)
            names = (_measures(fa, reasons) or _measures(fb, reasons) or {}).keys()
            for measure in names:
                compared.append(
                    Compared(
                        campaign_id,
                        week,
                        measure,
                        None if va is None else va.get(measure, 0),
                        None if vb is None else vb.get(measure, 0),
                        currency if measure == "reward cost" else None,
                    )
                )
    return compared
