"""Closing a month: the statement per campaign and currency, and the check that it ties out.

The statement rolls each campaign account forward over the month's transactions (those whose
**business date** is in the month): the balances before the month, the movements of the
month named by what they are (funded, reserved, issued, released, expired, spent by reward
kind, …) and the balances at its end. Two queries, both set-based: one sums each account's
entries before the month and up to its end; one sums the month's entries per account kind,
transaction kind and (for spent money) reward kind.

It *ties out* when, for every campaign, each account's opening balance plus its named
movements equals the sum of its entries up to the month's end, the funding account moved
exactly what was funded less what was defunded, and the month's entries sum to zero in each
currency. Every movement is read from the account it lands in, so an entry the posting rules
do not produce (a ``spent`` entry of an ``issue`` transaction, say) is in no named movement
and the roll-forward of its account misses it: ``Statement.mismatches`` names it with the
figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, and_, case, func, literal, select

from nudgeflow.money import format_minor_units
from store.ledger.tables import ledger_accounts, ledger_entries, ledger_transactions
from store.schema import actions

_T = ledger_transactions.c
_E = ledger_entries.c
_A = ledger_accounts.c

# The reward kinds a campaign file can give, each a spent column of its own in every
# statement (so a CSV's columns do not depend on the month); any other kind found in the
# ledger (an action whose reward was not recorded: ``unrecorded``) adds a column.
REWARD_KINDS = ("discount", "credit", "gift", "vip_invite")
UNRECORDED_KIND = "unrecorded"


@dataclass(frozen=True)
class StatementLine:
    """One campaign's month, in minor units of ``currency``. Movements are positive amounts
    named by what they do, except ``redemption_differences`` (signed: + the part of the
    reserved estimates a redemption did not need, back to the budget; − an overrun or a
    redemption reported after expiry, taken from it)."""

    campaign_id: str
    currency: str
    budget_remaining_opening: int = 0
    reserved_opening: int = 0
    outstanding_opening: int = 0
    spent_before_month: int = 0
    funded: int = 0
    defunded: int = 0
    reserved: int = 0
    issued: int = 0
    released_reserved: int = 0
    released_outstanding: int = 0
    expired: int = 0
    redeemed_at_estimate: int = 0
    redemption_differences: int = 0
    spent_by_reward_kind: dict[str, int] = field(default_factory=dict)
    funding_moved: int = 0  # the funding account's entries of this campaign's transactions
    # The balances at the month's end, summed from the entries (not rolled forward).
    budget_remaining_closing: int = 0
    reserved_closing: int = 0
    outstanding_closing: int = 0
    spent_to_date: int = 0

    @property
    def spent_in_month(self) -> int:
        return sum(self.spent_by_reward_kind.values())

    def rolled_forward(self) -> dict[str, tuple[int, int, int]]:
        """Per account: (opening, the named movements' net, the closing from the entries)."""
        budget = (
            self.funded
            - self.defunded
            - self.reserved
            + self.released_reserved
            + self.released_outstanding
            + self.expired
            + self.redemption_differences
        )
        reserved = self.reserved - self.issued - self.released_reserved
        outstanding = (
            self.issued - self.released_outstanding - self.expired - self.redeemed_at_estimate
        )
        return {
            "budget_remaining": (
                self.budget_remaining_opening,
                budget,
                self.budget_remaining_closing,
            ),
            "reserved": (self.reserved_opening, reserved, self.reserved_closing),
            "outstanding": (self.outstanding_opening, outstanding, self.outstanding_closing),
            "spent": (self.spent_before_month, self.spent_in_month, self.spent_to_date),
        }

    def mismatches(self) -> list[str]:
        def money(amount: int) -> str:
            return format_minor_units(amount, self.currency)

        found = [
            f"campaign {self.campaign_id} ({self.currency}) {account}: opening "
            f"{money(opening)} + the month's movements {money(moved)} = "
            f"{money(opening + moved)}, but its entries to the month's end sum to "
            f"{money(closing)}"
            for account, (opening, moved, closing) in self.rolled_forward().items()
            if opening + moved != closing
        ]
        if self.funding_moved != -(self.funded - self.defunded):
            found.append(
                f"campaign {self.campaign_id} ({self.currency}): funded {money(self.funded)} "
                f"less defunded {money(self.defunded)}, but the funding account moved "
                f"{money(self.funding_moved)} for it"
            )
        return found


@dataclass(frozen=True)
class Statement:
    month: str  # YYYY-MM
    first_day: date
    last_day: date
    lines: tuple[StatementLine, ...]
    transactions: int
    entries: int
    unbalanced: dict[str, int]  # currency → what the month's entries sum to, when not zero

    @property
    def reward_kinds(self) -> tuple[str, ...]:
        seen = {kind for line in self.lines for kind in line.spent_by_reward_kind}
        return REWARD_KINDS + tuple(sorted(seen - set(REWARD_KINDS)))

    def mismatches(self) -> list[str]:
        found = [problem for line in self.lines for problem in line.mismatches()]
        found.extend(
            f"the month's entries in {currency} sum to "
            f"{format_minor_units(total, currency)}, not zero"
            for currency, total in sorted(self.unbalanced.items())
        )
        return found

    @property
    def ties_out(self) -> bool:
        return not self.mismatches()


def month_bounds(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _reward_kind() -> ColumnElement[str]:
    kind = actions.c.reward["kind"].as_string()
    return func.coalesce(kind, literal(UNRECORDED_KIND, String))


def statement(connection: Connection, year: int, month: int) -> Statement:
    """The month's statement for every campaign with ledger entries up to its end."""
    first, last = month_bounds(year, month)
    before = _T.business_date < first
    to_end = _T.business_date <= last
    balances = connection.execute(
        select(
            _A.campaign_id,
            _A.kind,
            _A.currency,
            func.coalesce(func.sum(case((before, _E.amount_minor), else_=0)), 0),
            func.coalesce(func.sum(case((to_end, _E.amount_minor), else_=0)), 0),
            func.coalesce(func.sum(case((to_end, 1), else_=0)), 0),
        )
        .select_from(
            ledger_accounts.join(ledger_entries, _E.account == _A.account).join(
                ledger_transactions, _T.id == _E.transaction_id
            )
        )
        .where(_A.campaign_id.is_not(None))
        .group_by(_A.campaign_id, _A.kind, _A.currency)
    ).all()
    in_month = and_(_T.business_date >= first, to_end)
    kind = case((_A.kind == "spent", _reward_kind()), else_=literal("", String))
    movements = connection.execute(
        select(
            _T.campaign_id,
            _A.kind,
            _E.currency,
            _T.kind,
            kind,
            func.sum(_E.amount_minor),
            func.count(),
        )
        .select_from(
            ledger_entries.join(ledger_transactions, _T.id == _E.transaction_id)
            .join(ledger_accounts, _A.account == _E.account)
            .outerjoin(actions, actions.c.action_id == _T.action_id)
        )
        .where(in_month)
        .group_by(_T.campaign_id, _A.kind, _E.currency, _T.kind, kind)
    ).all()
    transactions = connection.execute(
        select(func.count()).select_from(ledger_transactions).where(in_month)
    ).scalar_one()
    return _assemble(first, last, balances, movements, int(transactions))


def _assemble(
    first: date,
    last: date,
    balances: Iterable[Sequence[Any]],
    movements: Iterable[Sequence[Any]],
    transactions: int,
) -> Statement:
    values: dict[tuple[str, str], dict[str, int]] = {}
    spent: dict[tuple[str, str], dict[str, int]] = {}
    account_names = {"budget": "budget_remaining", "spent": "spent"}
    for campaign_id, account_kind, currency, opening, closing, count in balances:
        if not count:
            continue  # no entry up to the month's end
        row = values.setdefault((campaign_id, currency), {})
        name = account_names.get(account_kind, account_kind)
        if name == "spent":
            row["spent_before_month"], row["spent_to_date"] = int(opening), int(closing)
        else:
            row[f"{name}_opening"], row[f"{name}_closing"] = int(opening), int(closing)
    # (account kind, transaction kind) → (movement, sign): each movement read from the
    # account it lands in (docs/finance.md, "Closing a month").
    named = {
        ("budget", "fund"): ("funded", 1),
        ("budget", "defund"): ("defunded", -1),
        ("reserved", "reserve"): ("reserved", 1),
        ("outstanding", "issue"): ("issued", 1),
        ("reserved", "void"): ("released_reserved", -1),
        ("outstanding", "void"): ("released_outstanding", -1),
        ("outstanding", "expire"): ("expired", -1),
        ("outstanding", "redeem"): ("redeemed_at_estimate", -1),
        ("budget", "redeem"): ("redemption_differences", 1),
        ("funding", "fund"): ("funding_moved", 1),
        ("funding", "defund"): ("funding_moved", 1),
    }
    entries = 0
    unbalanced: dict[str, int] = {}
    for campaign_id, account_kind, currency, txn_kind, reward_kind, total, count in movements:
        entries += int(count)
        unbalanced[currency] = unbalanced.get(currency, 0) + int(total)
        key = (campaign_id, currency)
        row = values.setdefault(key, {})
        if account_kind == "spent" and txn_kind == "redeem":
            kinds = spent.setdefault(key, {})
            kinds[reward_kind] = kinds.get(reward_kind, 0) + int(total)
        elif (account_kind, txn_kind) in named:
            name, sign = named[account_kind, txn_kind]
            row[name] = row.get(name, 0) + sign * int(total)
        # anything else is in no named movement: the roll-forward reports it
    lines = tuple(
        StatementLine(
            campaign_id,
            currency,
            spent_by_reward_kind=dict.fromkeys(REWARD_KINDS, 0)
            | spent.get((campaign_id, currency), {}),
            **row,
        )
        for (campaign_id, currency), row in sorted(values.items())
    )
    return Statement(
        f"{first:%Y-%m}",
        first,
        last,
        lines,
        transactions,
        entries,
        {currency: total for currency, total in unbalanced.items() if total},
    )


def statement_rows(result: Statement) -> Iterator[dict[str, str]]:
    """The statement as rows of decimal strings, one per campaign and currency, with the
    columns of ``statement_columns`` (CSV and JSON)."""
    kinds = result.reward_kinds
    for line in result.lines:
        money = {name: line.__getattribute__(name) for name in MONEY_COLUMNS}
        money |= {f"spent_{kind}": line.spent_by_reward_kind.get(kind, 0) for kind in kinds}
        money["spent_in_month"] = line.spent_in_month
        money["spent_to_date"] = line.spent_to_date
        yield {
            "month": result.month,
            "campaign_id": line.campaign_id,
            "currency": line.currency,
            **{name: format_minor_units(amount, line.currency) for name, amount in money.items()},
        }


MONEY_COLUMNS = (
    "budget_remaining_opening",
    "funded",
    "defunded",
    "reserved",
    "released_reserved",
    "released_outstanding",
    "expired",
    "redemption_differences",
    "budget_remaining_closing",
    "reserved_opening",
    "issued",
    "reserved_closing",
    "outstanding_opening",
    "redeemed_at_estimate",
    "outstanding_closing",
    "spent_before_month",
)


def statement_columns(result: Statement) -> tuple[str, ...]:
    spent = tuple(f"spent_{kind}" for kind in result.reward_kinds)
    return (
        "month",
        "campaign_id",
        "currency",
        *MONEY_COLUMNS,
        *spent,
        "spent_in_month",
        "spent_to_date",
    )
