"""``nudgeflow plan`` and ``nudgeflow why``: look before you leap; nothing is written.

Both rehearse the night (``night.plan.rehearse``: refresh, fatigue recovery and plan inside
one transaction that is rolled back), so they show exactly what ``nudgeflow run`` would do
for that date without changing a row. ``why`` then prints ``night.explain``'s account of one member,
campaign by campaign.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

import typer

from cli.context import console, process_app
from cli.options import RequiredAsOf
from cli.render import plural
from domain.campaign import Campaign
from domain.plan import CampaignPlan, Plan
from night.explain import approval_lines, explain_member
from night.plan import Rehearsal, rehearse
from night.report import format_excluded
from nudgeflow.errors import NotFoundError
from nudgeflow.money import Money
from planning.campaign_files import CampaignSet

LISTED = 20  # actions listed per campaign in the table; --json lists every one


@contextmanager
def _rehearsal(as_of: date) -> Iterator[Rehearsal]:
    app = process_app()
    campaign_set = app.load_campaigns()
    with rehearse(app.engine, campaign_set, app.zone, app.settings.currency, as_of) as rehearsal:
        yield rehearsal


# --- nudgeflow plan ------------------------------------------------------------------------


def _only(plan: Plan, campaign_id: str | None, campaign_set: CampaignSet) -> list[CampaignPlan]:
    if campaign_id is None:
        return plan.campaigns
    chosen = [c for c in plan.campaigns if c.campaign.id == campaign_id]
    if not chosen:
        known = {c.id: c for c in campaign_set.campaigns}
        if campaign_id in known:
            raise NotFoundError(f"campaign {campaign_id!r} is disabled (enabled: false)")
        raise NotFoundError(f"no campaign with id {campaign_id!r}")
    return chosen


def plan(
    as_of: RequiredAsOf,
    campaign_id: str | None = typer.Option(
        None, "--campaign", metavar="ID", help="Only this campaign."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with every action."),
) -> None:
    """Show what the nightly run would plan for a date, without writing anything."""
    with _rehearsal(as_of) as rehearsal:
        chosen = _only(rehearsal.night.plan, campaign_id, rehearsal.campaign_set)
    if as_json:
        document = {"as_of": as_of.isoformat(), "campaigns": [c.as_dict() for c in chosen]}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    console.print(f"Plan for {as_of:%Y-%m-%d} (nothing written)", markup=False)
    if not chosen:
        console.print("no enabled campaigns")
    for c in chosen:
        _print_campaign(c, as_of)
    if chosen:
        console.print(f"\n{_total(chosen)}", markup=False)


def _print_campaign(c: CampaignPlan, as_of: date) -> None:
    campaign = c.campaign
    held = c.excluded["holdout"]
    season = ""
    if not campaign.in_season(as_of):
        season = f" — out of season ({_season(campaign)})"
    console.print(
        f"\n{campaign.id} (priority {campaign.priority}): matched {c.matched:,}, "
        f"selected {c.selected:,}, held out {held:,}{season}",
        markup=False,
    )
    if any(n for reason, n in c.excluded.items() if reason != "holdout"):
        console.print(f"  excluded: {format_excluded(c.excluded)}", markup=False)
    chosen = [a for a in c.actions if not a.holdout]
    for action in chosen[:LISTED]:
        reward = action.reward.describe() if action.reward else "no reward"
        variant = f" (variant {action.variant})" if action.variant else ""
        console.print(
            f"    {action.member_id:<24} {reward:<28} {action.template}{variant}", markup=False
        )
    if len(chosen) > LISTED:
        console.print(f"    … and {len(chosen) - LISTED:,} more", markup=False)


def _season(campaign: Campaign) -> str:
    """``runs 2026-11-27 to 2026-12-24`` (either end may be open)."""
    starts = campaign.starts_on.isoformat() if campaign.starts_on else "…"
    ends = campaign.ends_on.isoformat() if campaign.ends_on else "…"
    return f"runs {starts} to {ends}"


def _total(chosen: list[CampaignPlan]) -> str:
    """``total: 3 members nudged, 2 rewards (estimated 10.00 USD + 5.00 EUR)``."""
    actions = [a for c in chosen for a in c.actions if not a.holdout]
    members = len({a.member_pk for a in actions})
    rewards = [a for a in actions if a.reward is not None]
    costs: dict[str, int] = {}
    for a in rewards:
        if a.currency is not None:
            costs[a.currency] = costs.get(a.currency, 0) + a.cost_minor
    text = f"total: {plural(members, 'member')} nudged, {plural(len(rewards), 'reward')}"
    if costs:
        spent = " + ".join(str(Money(minor, cur)) for cur, minor in sorted(costs.items()))
        text += f" (estimated {spent})"
    return text


# --- nudgeflow why ---------------------------------------------------------------------


def why(
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's member_id.")],
    as_of: RequiredAsOf,
) -> None:
    """Explain, campaign by campaign, why a member is or is not selected on a date."""
    with _rehearsal(as_of) as rehearsal:
        lines = explain_member(rehearsal, member_id)
        waited = approval_lines(rehearsal, member_id)
    console.print(f"{member_id} on {as_of:%Y-%m-%d}:", markup=False)
    for campaign_id, text in lines:
        console.print(f"  {campaign_id}: {text}", markup=False)
    if waited:
        console.print("approvals:", markup=False)
        for campaign_id, text in waited:
            console.print(f"  {campaign_id}: {text}", markup=False)
