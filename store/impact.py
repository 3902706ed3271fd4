"""What ``nudgeflow impact`` counts, set-based: per campaign, variant and group (treated or
held out), the actions planned in a period, those answered, their revenue, and the reward
cost the ledger holds for them.

The unit is the action: a member nudged twice in the period counts twice. An action is
*treated* when its email went out (state ``sent``) and *held out* when it belongs to the
control group. It is *answered* exactly as fatigue decides it (``store.fatigue``): an event
of one of the action's ``response_types`` at or after ``response_from`` (the end of the
night that planned it) and before ``response_until``; for a held-out action the same window
from the same night, so the two groups are measured alike. Its *revenue* is the sum of the
``purchase`` events' ``amount_minor`` in the business currency inside that window.

Three queries in all, however many members: the groups' counts with each distinct revenue
figure (a histogram, so a million actions that bought nothing are one row), and the ledger's
spent and outstanding balances per campaign, variant and currency.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, case, exists, false, func, or_, select, true

from store.fatigue import lists_type
from store.ledger.tables import ledger_accounts, ledger_entries, ledger_transactions
from store.schema import actions, events

TREATED_STATES = ("sent",)
PURCHASE = "purchase"


@dataclass
class GroupCounts:
    """One group (treated or held out) of one campaign and variant."""

    actions: int = 0
    responded: int = 0
    # The revenue of each action that had any, in minor units of the business currency.
    revenue: list[int] = field(default_factory=list)


@dataclass
class CampaignCounts:
    campaign_id: str
    variant: str | None
    treated: GroupCounts = field(default_factory=GroupCounts)
    held_out: GroupCounts = field(default_factory=GroupCounts)
    spent_minor: dict[str, int] = field(default_factory=dict)  # currency → spent
    outstanding_minor: dict[str, int] = field(default_factory=dict)  # currency → outstanding


def _in_period(start: date | None, end: date | None, campaign: str | None) -> list[Any]:
    a = actions.c
    where: list[Any] = []
    if start is not None:
        where.append(a.as_of >= start)
    if end is not None:
        where.append(a.as_of <= end)
    if campaign is not None:
        where.append(a.campaign_id == campaign)
    return where


def count_impact(
    connection: Connection,
    *,
    start: date | None,
    end: date | None,
    campaign: str | None,
    currency: str,
) -> list[CampaignCounts]:
    """Per (campaign, variant) the treated and held-out groups' counts and revenue, and the
    ledger's cost of the treated actions; in campaign, then variant order (None first).

    Held-out actions carry no variant: they are the control group of every variant.
    """
    a, e = actions.c, events.c
    answered = exists().where(
        e.member_pk == a.member_pk,
        e.occurred_at >= a.response_from,
        e.occurred_at < a.response_until,
        lists_type(connection, a.response_types, e.type),
    )
    revenue = (
        select(func.coalesce(func.sum(e.amount_minor), 0))
        .where(
            e.member_pk == a.member_pk,
            e.type == PURCHASE,
            e.currency == currency,
            e.occurred_at >= a.response_from,
            e.occurred_at < a.response_until,
        )
        .scalar_subquery()
    )
    per_action = (
        select(
            a.campaign_id.label("campaign_id"),
            a.variant.label("variant"),
            a.holdout.label("holdout"),
            case((answered, 1), else_=0).label("responded"),
            revenue.label("revenue"),
        )
        .where(
            *_in_period(start, end, campaign),
            or_(a.holdout == true(), a.state.in_(TREATED_STATES)),
        )
        .subquery("per_action")
    )
    p = per_action.c
    histogram = (
        select(
            p.campaign_id,
            p.variant,
            p.holdout,
            p.revenue,
            func.count().label("actions"),
            func.sum(p.responded).label("responded"),
        )
        .group_by(p.campaign_id, p.variant, p.holdout, p.revenue)
        .order_by(p.campaign_id, p.variant, p.holdout, p.revenue)
    )
    found: dict[tuple[str, str | None], CampaignCounts] = {}
    for campaign_id, variant, holdout, amount, n, responded in connection.execute(histogram):
        key = (str(campaign_id), None if holdout else variant)
        counts = found.setdefault(key, CampaignCounts(*key))
        group = counts.held_out if holdout else counts.treated
        group.actions += int(n)
        group.responded += int(responded or 0)
        if amount:
            group.revenue.extend([int(amount)] * int(n))
    for (campaign_id, variant), kind, money_currency, amount in _ledger_cost(
        connection, start, end, campaign
    ):
        counts = found.setdefault((campaign_id, variant), CampaignCounts(campaign_id, variant))
        target = counts.spent_minor if kind == "spent" else counts.outstanding_minor
        target[money_currency] = target.get(money_currency, 0) + amount
    return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1] is not None, k[1] or ""))]


def _ledger_cost(
    connection: Connection, start: date | None, end: date | None, campaign: str | None
) -> list[tuple[tuple[str, str | None], str, str, int]]:
    """((campaign, variant), spent | outstanding, currency, balance) of the treated actions
    planned in the period: the entries their reward transactions posted to the campaign's
    spent and outstanding accounts (a redeemed reward has moved on from outstanding to spent,
    an expired or voided one out of both)."""
    a, t, en, acc = actions.c, ledger_transactions.c, ledger_entries.c, ledger_accounts.c
    query = (
        select(a.campaign_id, a.variant, acc.kind, en.currency, func.sum(en.amount_minor))
        .select_from(
            actions.join(ledger_transactions, t.action_id == a.action_id)
            .join(ledger_entries, en.transaction_id == t.id)
            .join(ledger_accounts, acc.account == en.account)
        )
        .where(
            *_in_period(start, end, campaign),
            a.holdout == false(),
            acc.kind.in_(("spent", "outstanding")),
            and_(acc.campaign_id == a.campaign_id),
        )
        .group_by(a.campaign_id, a.variant, acc.kind, en.currency)
    )
    totals: dict[tuple[tuple[str, str | None], str, str], int] = defaultdict(int)
    for campaign_id, variant, kind, money_currency, amount in connection.execute(query):
        totals[((str(campaign_id), variant), str(kind), str(money_currency))] += int(amount or 0)
    return [(key, kind, cur, amount) for (key, kind, cur), amount in totals.items()]
