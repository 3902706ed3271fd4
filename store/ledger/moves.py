"""One action's reward in the ledger: where it stands, and the moves of its life — reserve,
issue, redeem, expire, void — each posted through the journal under the append lock.

Budgets cannot be overspent: ``reserve`` locks the campaign's budget account row, reads its
running balance (kept by every append, checked against the entries by ``verify``) and
refuses when the reservation would take it below zero, all under the append lock. Two
overlapping runs in two processes cannot both spend the last reward. (On SQLite even a
caller that forgot ``ledger_transaction`` cannot overspend: a deferred transaction that read
a stale balance fails with ``SQLITE_BUSY_SNAPSHOT`` when it writes.)

Each move is idempotent per action: repeating one that is already in the ledger posts
nothing, and the ``(action_id, kind)`` unique constraint makes the database refuse a double
posting even if this code were wrong. Impossible moves (redeem before issue, issue after
void, …) raise ``RewardError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, select

from domain import postings
from domain.postings import Entry, campaign_account
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from store.ledger.journal import append, ensure_campaign, lock
from store.ledger.tables import ledger_accounts, ledger_entries, ledger_transactions

_T = ledger_transactions.c
_E = ledger_entries.c
_A = ledger_accounts.c


@dataclass(frozen=True)
class _Posted:
    transaction_id: int
    campaign_id: str
    member_ref: str | None


@dataclass(frozen=True)
class _History:
    """What the ledger already holds for one action."""

    action_id: str
    posted: dict[str, _Posted]  # kind → transaction
    estimate: Money | None  # what the reservation held

    @property
    def state(self) -> str:
        """none | reserved | outstanding | redeemed | expired | voided"""
        kinds = self.posted
        for kind, state in (("redeem", "redeemed"), ("void", "voided"), ("expire", "expired")):
            if kind in kinds:
                return state
        if "issue" in kinds:
            return "outstanding"
        return "reserved" if "reserve" in kinds else "none"

    def require_reserved(self) -> tuple[_Posted, Money]:
        reserved = self.posted.get("reserve")
        if reserved is None or self.estimate is None:
            raise RewardError(f"action {self.action_id} has no reservation in the ledger")
        return reserved, self.estimate


def _history(connection: Connection, action_id: str) -> _History:
    rows = connection.execute(
        select(_T.id, _T.kind, _T.campaign_id, _T.member_ref).where(_T.action_id == action_id)
    ).all()
    posted = {kind: _Posted(int(tid), cid, ref) for tid, kind, cid, ref in rows}
    estimate = None
    if "reserve" in posted:
        reserve = posted["reserve"]
        amount, currency = connection.execute(
            select(_E.amount_minor, _E.currency).where(
                _E.transaction_id == reserve.transaction_id,
                _E.account == campaign_account(reserve.campaign_id, "reserved"),
            )
        ).one()
        estimate = Money(int(amount), currency)
    return _History(action_id, posted, estimate)


def reward_state(connection: Connection, action_id: str) -> str:
    """Where the ledger has an action's reward: none | reserved | outstanding | redeemed |
    expired | voided."""
    return _history(connection, action_id).state


def _today(business_date: date | None) -> date:
    # Callers pass the business date; the fallback is the UTC date, which is what "today"
    # means for a call made outside any business night (a webhook, a manual fix).
    return business_date if business_date is not None else datetime.now(UTC).date()


def reserve(
    connection: Connection,
    action_id: str,
    campaign_id: str,
    amount: Money,
    member_ref: str | None,
    business_date: date,
    *,
    fund_shortfall: bool = False,
    now: datetime | None = None,
) -> bool:
    """Hold ``amount`` of the campaign's budget for one action: budget → reserved.

    Returns False, posting nothing, when the budget cannot cover it. With
    ``fund_shortfall`` (campaigns whose file sets no budget) the shortfall is first funded
    from the organisation's funding account, so such campaigns never stop for budget and
    the ledger still balances. Repeating a reservation returns True and posts nothing;
    reserving again an action whose reservation was released raises ``RewardError``.
    """
    if amount.amount_minor < 0:
        raise RewardError(f"action {action_id}: cannot reserve a negative amount ({amount})")
    lock(connection)
    history = _history(connection, action_id)
    if "reserve" in history.posted:
        if history.posted["reserve"].campaign_id != campaign_id:
            raise RewardError(
                f"action {action_id} is reserved for campaign "
                f"{history.posted['reserve'].campaign_id}, not {campaign_id}"
            )
        if history.state in ("voided", "expired"):
            raise RewardError(
                f"action {action_id}: its reservation was already released ({history.state})"
            )
        return True
    ensure_campaign(connection, campaign_id, amount.currency)
    budget = campaign_account(campaign_id, "budget")
    # Row lock on the budget account. The advisory lock already serialises appends; this
    # keeps the check-then-write atomic per budget even if that lock is ever narrowed.
    available = int(
        connection.execute(
            select(_A.balance_minor).where(_A.account == budget).with_for_update()
        ).scalar_one()
    )
    if available < amount.amount_minor:
        if not fund_shortfall:
            return False
        shortfall = Money(amount.amount_minor - available, amount.currency)
        append(
            connection,
            "fund",
            campaign_id,
            postings.fund(campaign_id, shortfall),
            business_date=business_date,
            memo=f"funded on demand for action {action_id}: the campaign has no budget",
            now=now,
        )
    append(
        connection,
        "reserve",
        campaign_id,
        postings.reserve(campaign_id, amount),
        business_date=business_date,
        memo=f"reserve {amount} for action {action_id}",
        action_id=action_id,
        member_ref=member_ref,
        now=now,
    )
    return True


def _move(
    connection: Connection,
    kind: str,
    action_id: str,
    allowed: tuple[str, ...],
    entries: Callable[[str, Money, str], Sequence[Entry]],
    memo: Callable[[Money], str],
    *,
    provider_ref: str | None = None,
    business_date: date | None,
    now: datetime | None,
) -> bool:
    """Post one step of a reserved action's life (issue, redeem, expire, void).

    Idempotent per (kind, action): True when posted now, False when it already was. The
    action must have been reserved and be in one of the ``allowed`` states; ``entries``
    gets the campaign, the reserved estimate and the current state.
    """
    lock(connection)
    history = _history(connection, action_id)
    if kind in history.posted:
        return False
    reserved, estimate = history.require_reserved()
    if history.state not in allowed:
        raise RewardError(f"action {action_id}: cannot {kind} a reward that is {history.state}")
    append(
        connection,
        kind,
        reserved.campaign_id,
        entries(reserved.campaign_id, estimate, history.state),
        business_date=_today(business_date),
        memo=memo(estimate),
        action_id=action_id,
        member_ref=reserved.member_ref,
        provider_ref=provider_ref,
        now=now,
    )
    return True


def issue(
    connection: Connection,
    action_id: str,
    provider_ref: str | None,
    *,
    business_date: date | None = None,
    now: datetime | None = None,
) -> bool:
    """The reward exists at the provider: reserved → outstanding. True when posted now,
    False when it already was."""
    return _move(
        connection,
        "issue",
        action_id,
        ("reserved",),
        lambda campaign, estimate, _state: postings.issue(campaign, estimate),
        lambda estimate: f"issued {estimate} reward for action {action_id}",
        provider_ref=provider_ref,
        business_date=business_date,
        now=now,
    )


def redeem(
    connection: Connection,
    action_id: str,
    actual: Money,
    provider_ref: str | None,
    *,
    business_date: date | None = None,
    now: datetime | None = None,
) -> bool:
    """The member used the reward: outstanding → spent at the ``actual`` cost. The estimate
    held beyond it returns to the budget; an overrun above the estimate is taken from the
    budget. A redemption reported after the reward was expired takes the whole actual cost
    from the budget (the expiry had already released the estimate)."""

    def entries(campaign: str, estimate: Money, state: str) -> Sequence[Entry]:
        if state == "outstanding":
            return postings.redeem(campaign, estimate, actual)
        if actual.currency != estimate.currency:
            raise RewardError(
                f"action {action_id}: redeemed in {actual.currency}, reserved in "
                f"{estimate.currency}"
            )
        return postings.late_redeem(campaign, actual)

    return _move(
        connection,
        "redeem",
        action_id,
        ("outstanding", "expired"),
        entries,
        lambda estimate: f"redeemed for {actual} (reserved {estimate}) by action {action_id}",
        provider_ref=provider_ref,
        business_date=business_date,
        now=now,
    )


def expire(
    connection: Connection,
    action_id: str,
    *,
    business_date: date | None = None,
    now: datetime | None = None,
) -> bool:
    """The reward expired unused: outstanding → budget."""
    return _move(
        connection,
        "expire",
        action_id,
        ("outstanding",),
        lambda campaign, estimate, _state: postings.expire(campaign, estimate),
        lambda estimate: f"expired unredeemed: {estimate} back to budget (action {action_id})",
        business_date=business_date,
        now=now,
    )


def void(
    connection: Connection,
    action_id: str,
    reason: str,
    *,
    business_date: date | None = None,
    now: datetime | None = None,
) -> bool:
    """The action failed or was cancelled: reserved (or outstanding) → budget."""
    return _move(
        connection,
        "void",
        action_id,
        ("reserved", "outstanding"),
        lambda campaign, estimate, state: postings.void(
            campaign, estimate, issued=state == "outstanding"
        ),
        lambda _estimate: f"void: {reason}",
        business_date=business_date,
        now=now,
    )
