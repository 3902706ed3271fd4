"""Ledger balances and budget funding: what each campaign's accounts hold,
and funding that follows the campaign files — a change in a file becomes a funding or
de-funding transaction, never an edit. Runs in the caller's ``ledger_transaction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, case, func, select

from domain import postings
from domain.campaign import Campaign
from domain.postings import campaign_account
from nudgeflow.money import Money, format_minor_units
from store.ledger.journal import append, ensure_campaign, lock
from store.ledger.tables import ledger_accounts, ledger_entries, ledger_transactions

_T = ledger_transactions.c
_E = ledger_entries.c
_A = ledger_accounts.c


@dataclass(frozen=True)
class Balance:
    account: str
    campaign_id: str | None  # None for the organisation's funding accounts
    kind: str  # funding | budget | reserved | outstanding | spent
    currency: str
    amount_minor: int

    @property
    def amount(self) -> str:
        return format_minor_units(self.amount_minor, self.currency)


@dataclass(frozen=True)
class CampaignBalances:
    """One campaign's accounts; ``funded`` is what fund/defund transactions put in."""

    campaign_id: str
    currency: str
    budget: int = 0
    reserved: int = 0
    outstanding: int = 0
    spent: int = 0
    funded: int = 0
    committed_before: int = 0  # reserved + outstanding + spent before the month (funding)

    @property
    def committed(self) -> int:
        return self.reserved + self.outstanding + self.spent


def _up_to(as_of: date | None) -> ColumnElement[bool]:
    """Transactions dated on or before ``as_of`` (every transaction without one)."""
    return _T.business_date <= (as_of or date.max)


def balances(connection: Connection, as_of: date | None = None) -> list[Balance]:
    """Every account's balance (zero for accounts without entries), one grouped query; with
    ``as_of``, at the end of that business date (its transactions and the earlier ones)."""
    rows = connection.execute(
        select(
            _A.account,
            _A.campaign_id,
            _A.kind,
            _A.currency,
            func.coalesce(func.sum(case((_up_to(as_of), _E.amount_minor), else_=0)), 0),
        )
        .select_from(
            ledger_accounts.outerjoin(ledger_entries, _E.account == _A.account).outerjoin(
                ledger_transactions, _T.id == _E.transaction_id
            )
        )
        .group_by(_A.account, _A.campaign_id, _A.kind, _A.currency)
        .order_by(_A.campaign_id.is_(None), _A.campaign_id, _A.account)
    ).all()
    return [Balance(a, c, k, cur, int(total)) for a, c, k, cur, total in rows]


def campaign_balances(
    connection: Connection, month_start: date | None = None, as_of: date | None = None
) -> dict[str, CampaignBalances]:
    """Per campaign: the four balances, what was funded, and (for per-month funding) what
    was committed by transactions dated before ``month_start``; with ``as_of``, at the end
    of that business date (campaigns with no transaction by then are left out)."""
    # Without a month, nothing counts as "before" (date.min precedes every business date).
    before = _T.business_date < (month_start or date.min)
    up_to = _up_to(as_of)
    funding_kind = and_(up_to, _T.kind.in_(("fund", "defund")))
    rows = connection.execute(
        select(
            _A.campaign_id,
            _A.kind,
            _A.currency,
            func.coalesce(func.sum(case((up_to, _E.amount_minor), else_=0)), 0),
            func.coalesce(func.sum(case((funding_kind, _E.amount_minor), else_=0)), 0),
            func.coalesce(func.sum(case((before, _E.amount_minor), else_=0)), 0),
            func.coalesce(func.sum(case((up_to, 1), else_=0)), 0),
        )
        .select_from(
            ledger_accounts.outerjoin(ledger_entries, _E.account == _A.account).outerjoin(
                ledger_transactions, _T.id == _E.transaction_id
            )
        )
        .where(_A.campaign_id.is_not(None))
        .group_by(_A.campaign_id, _A.kind, _A.currency)
    ).all()
    sums: dict[str, dict[str, int]] = {}
    currencies: dict[str, str] = {}
    dated: set[str] = set()
    for campaign_id, kind, currency, total, funded, earlier, entries in rows:
        if entries:
            dated.add(campaign_id)
        values = sums.setdefault(campaign_id, {"committed_before": 0})
        currencies[campaign_id] = currency
        values[kind] = int(total)
        if kind == "budget":
            values["funded"] = int(funded)
        else:
            values["committed_before"] += int(earlier)
    return {
        campaign_id: CampaignBalances(
            campaign_id,
            currencies[campaign_id],
            budget=values.get("budget", 0),
            reserved=values.get("reserved", 0),
            outstanding=values.get("outstanding", 0),
            spent=values.get("spent", 0),
            funded=values.get("funded", 0),
            committed_before=values["committed_before"],
        )
        for campaign_id, values in sorted(sums.items())
        if as_of is None or campaign_id in dated
    }


@dataclass(frozen=True)
class FundingChange:
    campaign_id: str
    kind: str  # fund | defund
    amount: Money
    target: Money  # what the files say the campaign should be funded with
    memo: str = field(default="")


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _funding_target(campaign: Campaign, committed_before: int, month: date) -> tuple[int, str]:
    """What the campaign should be funded with, and why (for the memo).

    ``total`` alone: the total. ``per_month``: this month's allowance on top of what earlier
    months committed (so unused allowance does not carry over), capped by ``total`` when
    both are set.
    """
    budget = campaign.budget
    assert budget is not None
    limits: list[tuple[int, str]] = []
    if budget.total is not None:
        limits.append((budget.total.amount_minor, f"budget.total {budget.total}"))
    if budget.per_month is not None:
        limits.append(
            (
                committed_before + budget.per_month.amount_minor,
                f"budget.per_month {budget.per_month} for {month:%Y-%m} "
                f"(+ {format_minor_units(committed_before, budget.currency)} committed before)",
            )
        )
    return min(limits)


def sync_funding(
    connection: Connection,
    campaigns: Sequence[Campaign],
    as_of: date | datetime,
    zone: ZoneInfo,
    *,
    now: datetime | None = None,
) -> list[FundingChange]:
    """Make each campaign's funding follow its file: a ``fund`` or ``defund`` transaction
    for the difference, nothing when they agree (so running twice posts nothing).

    Pass every campaign file (``CampaignSet.campaigns``, enabled or not): a campaign with
    ledger accounts but no file any more is de-funded. Campaigns without a budget are left
    alone (they are funded on demand, see ``reserve``). De-funding never takes more than
    the budget holds: money reserved, outstanding or spent stays, and a later sync returns
    the rest once reservations are released.
    """
    business_date = as_of.astimezone(zone).date() if isinstance(as_of, datetime) else as_of
    month = _month_start(business_date)
    lock(connection)
    for campaign in campaigns:
        if campaign.budget is not None:
            ensure_campaign(connection, campaign.id, campaign.budget.currency)
    current = campaign_balances(connection, month)
    files = {c.id: c for c in campaigns}
    changes: list[FundingChange] = []
    for campaign_id in sorted(set(files) | set(current)):
        state = current.get(campaign_id)
        if state is None:
            continue
        if campaign_id not in files:
            target, why = 0, "campaign file removed"
        elif files[campaign_id].budget is None:
            continue
        else:
            target, why = _funding_target(files[campaign_id], state.committed_before, month)
        currency = state.currency
        if target > state.funded:
            kind, amount = "fund", target - state.funded
        else:
            kind, amount = "defund", min(state.funded - target, max(0, state.budget))
        if amount == 0:
            continue
        money = Money(amount, currency)
        memo = f"{kind} {money}: {why}"
        entries = (postings.fund if kind == "fund" else postings.defund)(campaign_id, money)
        append(
            connection, kind, campaign_id, entries, business_date=business_date, memo=memo, now=now
        )
        changes.append(FundingChange(campaign_id, kind, money, Money(target, currency), memo))
    return changes


class LedgerBudgets:
    """``domain.plan.Budgets`` from the ledger: what each campaign's budget account holds,
    in minor units (never below zero); ``None`` for campaigns without a budget."""

    def __init__(self, connection: Connection, campaigns: Sequence[Campaign]) -> None:
        budgeted = sorted(c.id for c in campaigns if c.budget is not None)
        self._remaining = dict.fromkeys(budgeted, 0)
        if not budgeted:
            return
        accounts = {campaign_account(cid, "budget"): cid for cid in budgeted}
        rows = connection.execute(
            select(_E.account, func.sum(_E.amount_minor))
            .where(_E.account.in_(sorted(accounts)))
            .group_by(_E.account)
        ).all()
        for account, total in rows:
            self._remaining[accounts[account]] = max(0, int(total))

    def remaining(self, campaign_id: str) -> int | None:
        return self._remaining.get(campaign_id)
