"""Backtest a campaign set before it goes live (``nudgeflow simulate``): the nights from
``start`` to ``end`` replayed one after the other in a scratch copy of the database
(``store.scratch``), so the real database is only read, and nothing is sent or issued: no
sender or issuer is even built.

Each night runs the night's own use cases on the copy, in the nightly flow's order: refresh
(``night.refresh``), fatigue recovery and the plan (``night.fatigue``, ``night.plan``), then
dispatch's stand-in, which marks the night's actions ``sent`` (``store.backtest``), and
fatigue tagging; the run is recorded as completed, as a real night's is. So every guard of
the real plan applies, and what the nights do accumulates as it would: the simulated nudges
count for frequency caps, ``already_received`` and ``max_per_run`` the following nights,
fatigue rests members they went unanswered by, and each reward's cost draws on its
campaign's budget (``store.guard_facts.StoredBudgets``, as the planner reads it).

What the copy holds from ``start`` on (actions, runs and tag changes of real nights) is
taken out first, so the simulated nights replace them. Responses come only from the stored
events: nobody answers a simulated nudge (``ASSUMPTION``, said in every output).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from domain.backtest import (
    EARLIER_NUDGES,
    HOLDOUT,
    CampaignNight,
    CampaignSummary,
    Compared,
    compare,
    summarise,
)
from domain.campaign import Campaign
from night.context import Night
from night.fatigue import recover_rested, tag_unanswered
from night.plan import plan
from night.refresh import refresh
from night.runs import close_run, open_run
from nudgeflow.errors import CampaignFileError, NudgeflowError
from nudgeflow.timeutil import Clock
from planning.campaign_files import CampaignSet, load_campaign_set
from store.backtest import (
    fatigue_by_campaign,
    mark_night_sent,
    night_costs,
    refresh_statistics,
    rewind_to,
)
from store.guard_facts import StoredBudgets
from store.scratch import scratch_copy

ASSUMPTION = (
    "assumes no new responses: members respond only as the stored events say, never to "
    "the simulated nudges"
)
MAX_NIGHTS = 366


class SimulationError(NudgeflowError):
    """``nudgeflow simulate`` cannot start: bad dates, a missing folder, invalid files."""


def check_period(start: date, end: date) -> None:
    """Refuse an empty or overlong period (``SimulationError``, one line)."""
    if end < start:
        raise SimulationError(f"--to {end} is before --from {start}")
    nights = (end - start).days + 1
    if nights > MAX_NIGHTS:
        raise SimulationError(
            f"--from {start} --to {end} is {nights} nights; simulate at most {MAX_NIGHTS} at once"
        )


def load_campaigns(folder: Path, option: str) -> CampaignSet:
    """The campaign set in ``folder``, or one line saying why it cannot be simulated: the
    folder is missing, or its files have problems (the first located ``path:line:col``)."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise SimulationError(f"{option} {folder}: {what}")
    try:
        return load_campaign_set(folder)
    except CampaignFileError as exc:
        first = exc.problems[0]
        more = len(exc.problems) - 1
        others = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise SimulationError(
            f"{option} {folder}: {first}{others}; "
            f"NUDGEFLOW_CAMPAIGNS_DIR={folder} nudgeflow validate lists every problem"
        ) from None


@dataclass(frozen=True)
class Backtest:
    """One campaign set over the simulated nights."""

    folder: str
    start: date
    end: date
    nights: int
    campaigns: tuple[CampaignSummary, ...]
    budgets: dict[str, str]  # campaign id → its budget in words ("500.00 USD per month")
    replaced_actions: int  # actions of real nights from `start` on, left out of the copy

    def as_dict(self) -> dict[str, Any]:
        return {
            "assumption": ASSUMPTION,
            "campaigns_dir": self.folder,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "nights": self.nights,
            "replaced_stored_actions": self.replaced_actions,
            "campaigns": [
                {**c.as_dict(), "budget": self.budgets.get(c.campaign_id)} for c in self.campaigns
            ],
        }


@dataclass(frozen=True)
class Comparison:
    """Two campaign sets over the same nights, and every measure side by side."""

    a: Backtest
    b: Backtest
    rows: tuple[Compared, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "assumption": ASSUMPTION,
            "from": self.a.start.isoformat(),
            "to": self.a.end.isoformat(),
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "differences": [r.as_dict() for r in self.rows],
        }


def _nights(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _budget_text(campaign: Campaign) -> str | None:
    budget = campaign.budget
    if budget is None:
        return None
    parts = []
    if budget.total is not None:
        parts.append(f"{budget.total} in total")
    if budget.per_month is not None:
        parts.append(f"{budget.per_month} per month")
    return ", ".join(parts)


def simulate(
    engine: Engine,
    campaigns: CampaignSet,
    start: date,
    end: date,
    *,
    folder: str,
    zone: ZoneInfo,
    currency: str,
    clock: Clock,
    progress: Callable[[date], None] | None = None,
) -> Backtest:
    """Replay ``campaigns`` night by night from ``start`` to ``end`` in a scratch copy of
    ``engine``'s database, which is deleted afterwards (see the module docstring)."""
    check_period(start, end)
    rows: list[CampaignNight] = []
    with scratch_copy(engine) as scratch:
        with scratch.begin() as connection:
            rewound = rewind_to(connection, start)
        for day in _nights(start, end):
            if progress is not None:
                progress(day)
            night = Night(day, scratch, campaigns, zone, currency, clock)
            rows.extend(_night(night))
        with scratch.connect() as connection:
            costs = night_costs(connection, start, end)
            tagged = fatigue_by_campaign(connection, campaigns.policy.fatigue_tag, start, end)
    rows = _with_figures(rows, costs, tagged)
    order = [c.id for c in campaigns.enabled]
    return Backtest(
        folder=folder,
        start=start,
        end=end,
        nights=(end - start).days + 1,
        campaigns=tuple(summarise(rows, order)),
        budgets={c.id: text for c in campaigns.enabled if (text := _budget_text(c))},
        replaced_actions=rewound.actions,
    )


def _night(night: Night) -> list[CampaignNight]:
    """One night on the scratch copy, as the nightly flow runs it, dispatch aside."""
    opened = open_run(night.engine, night.as_of, "nightly", None, night.clock)
    refresh(night)
    recover_rested(night)
    summary = plan(night)
    with night.engine.begin() as connection:
        mark_night_sent(connection, night.as_of, night.clock())
    tag_unanswered(night)
    enabled = night.campaigns.enabled
    currencies = {c.id: _currency(c) for c in enabled}
    with night.engine.connect() as connection:
        budgets = StoredBudgets(connection, enabled, night.as_of)
    close_run(night.engine, opened.run_id, "completed", night.clock, summary={"simulated": True})
    with night.engine.begin() as connection:
        refresh_statistics(connection)
    return [
        CampaignNight(
            campaign_id=c["id"],
            as_of=night.as_of,
            matched=c["matched"],
            selected=c["selected"],
            held_out=c["held_out"],
            excluded={r: n for r, n in c["excluded"].items() if r != HOLDOUT},
            currency=currencies.get(c["id"]),
            budget_left_minor=budgets.remaining(c["id"]),
        )
        for c in summary["campaigns"]
    ]


def _currency(campaign: Campaign) -> str | None:
    """What a campaign's cost and budget are counted in: its budget's currency, else its
    reward's (None: the campaign costs nothing)."""
    if campaign.budget is not None:
        return campaign.budget.currency
    reward = campaign.reward
    return reward.cost.currency if reward is not None and reward.cost is not None else None


def _with_figures(
    rows: Sequence[CampaignNight],
    costs: dict[tuple[date, str], tuple[int, str]],
    tagged: dict[tuple[date, str], int],
) -> list[CampaignNight]:
    """The nights with their reward cost and the fatigue tags their campaign's nudges
    tipped; tags tipped by nudges from before the simulation get a row of their own."""
    planned = {(r.as_of, r.campaign_id) for r in rows}
    done = []
    for r in rows:
        cost, money = costs.get((r.as_of, r.campaign_id), (0, r.currency))
        done.append(
            CampaignNight(
                r.campaign_id,
                r.as_of,
                r.matched,
                r.selected,
                r.held_out,
                r.excluded,
                cost,
                money,
                r.budget_left_minor,
                tagged.get((r.as_of, r.campaign_id), 0),
            )
        )
    earlier: dict[date, int] = {}
    for (day, campaign_id), count in tagged.items():
        if (day, campaign_id) not in planned:
            earlier[day] = earlier.get(day, 0) + count
    done.extend(
        CampaignNight(EARLIER_NUDGES, day, fatigue_tags=count) for day, count in earlier.items()
    )
    return done


def compare_sets(a: Backtest, b: Backtest) -> Comparison:
    """``a`` and ``b`` side by side, measure by measure, with the difference."""
    return Comparison(a, b, tuple(compare(a.campaigns, b.campaigns)))
