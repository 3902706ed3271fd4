"""The reward ledger: transactions, appends and each reward's moves. Balances
and funding are in ``store.ledger_funding``, verification and export in
``store.ledger_audit``; all of it is reachable as ``store.ledger``.

Every function runs in the caller's transaction and commits nothing. Open that transaction
with ``ledger_transaction(engine)``: on SQLite it is ``BEGIN IMMEDIATE`` (the write lock is
taken before the first read, so a reservation's balance check and its insert see the same
ledger); on PostgreSQL it is an ordinary transaction in which every ledger write first takes
``pg_advisory_xact_lock(LEDGER_LOCK_KEY)``. Appends are therefore serialised on both
databases, which is what keeps the hash chain a chain and ``seq`` gap-free.

Budgets cannot be overspent: ``reserve`` locks the campaign's budget account row, reads its
running balance (kept by every append, checked against the entries by ``verify``) and
refuses when the reservation would take it below zero, all under the append lock. Two
overlapping runs in two processes cannot both spend the last reward. (On SQLite even a
caller that forgot ``ledger_transaction`` cannot overspend: a deferred transaction that read
a stale balance fails with ``SQLITE_BUSY_SNAPSHOT`` when it writes.)

Each move (reserve, issue, redeem, expire, void) is idempotent per action: repeating one that
is already in the ledger posts nothing, and the ``(action_id, kind)`` unique constraint makes
the database refuse a double posting even if this code were wrong. Impossible moves (redeem
before issue, issue after void, …) raise ``RewardError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from domain import postings
from domain.postings import GENESIS_HASH, Entry, campaign_account, funding_account
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from store.engine import immediate_transaction
from store.ledger_tables import ledger_accounts, ledger_entries, ledger_transactions

# pg_advisory_xact_lock key that serialises ledger appends ("ledger" in ASCII).
LEDGER_LOCK_KEY = 0x6C6564676572

_T = ledger_transactions.c
_E = ledger_entries.c
_A = ledger_accounts.c


# --- transactions and locking -----------------------------------------------------------


def ledger_transaction(engine: Engine) -> AbstractContextManager[Connection]:
    """A write transaction for ledger work (``store.engine.immediate_transaction``): on
    SQLite the write lock is taken before the first read, so a reservation's balance check
    and its insert see the same ledger."""
    return immediate_transaction(engine)


def _lock(connection: Connection) -> None:
    """Serialise ledger writers. PostgreSQL: a transaction-scoped advisory lock (released at
    commit or rollback). SQLite: the caller's BEGIN IMMEDIATE already holds the write lock."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK_KEY})


def _ensure_accounts(connection: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert-if-missing: accounts are created on first use and never change afterwards."""
    if connection.dialect.name == "postgresql":
        pg = postgresql.insert(ledger_accounts).on_conflict_do_nothing(index_elements=["account"])
        connection.execute(pg, list(rows))
    else:
        lite = sqlite.insert(ledger_accounts).on_conflict_do_nothing(index_elements=["account"])
        connection.execute(lite, list(rows))


def _ensure_campaign(connection: Connection, campaign_id: str, currency: str) -> None:
    existing = connection.execute(
        select(_A.currency).where(_A.account == campaign_account(campaign_id, "budget"))
    ).scalar()
    if existing == currency:
        return  # the usual case: every account was created on the campaign's first use
    rows: list[Mapping[str, object]] = [
        {"account": funding_account(currency), "campaign_id": None, "kind": "funding"},
        *(
            {
                "account": campaign_account(campaign_id, kind),
                "campaign_id": campaign_id,
                "kind": kind,
            }
            for kind in postings.CAMPAIGN_ACCOUNT_KINDS
        ),
    ]
    _ensure_accounts(connection, [{**row, "currency": currency} for row in rows])
    existing = connection.execute(
        select(_A.currency).where(_A.account == campaign_account(campaign_id, "budget"))
    ).scalar_one()
    if existing != currency:
        raise RewardError(
            f"campaign {campaign_id}: its ledger accounts are in {existing}, not {currency} "
            "(a campaign keeps one currency; use a new campaign id for another)"
        )


def _now(now: datetime | None) -> datetime:
    """Naive UTC with microseconds, as stored (and hashed)."""
    instant = now if now is not None else datetime.now(UTC)
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC).replace(tzinfo=None)
    return instant


def _header(row: Mapping[str, object]) -> dict[str, object]:
    """The transaction fields covered by the hash (not ``id``: the database assigns it)."""
    names = (
        "seq",
        "kind",
        "campaign_id",
        "action_id",
        "member_ref",
        "provider_ref",
        "business_date",
        "created_at",
        "memo",
    )
    return {name: row[name] for name in names}


def _append(
    connection: Connection,
    kind: str,
    campaign_id: str,
    entries: Sequence[Entry],
    *,
    business_date: date,
    memo: str,
    action_id: str | None = None,
    member_ref: str | None = None,
    provider_ref: str | None = None,
    now: datetime | None = None,
) -> int:
    """Append one balanced transaction at the head of the chain; return its id. The caller
    holds the append lock (``_lock``) and has created the accounts."""
    if kind not in postings.TRANSACTION_KINDS:
        raise ValueError(f"unknown ledger transaction kind {kind!r}")
    postings.check_balanced(entries)
    head = connection.execute(
        select(_T.seq, _T.hash).order_by(_T.seq.desc()).limit(1)
    ).one_or_none()
    seq, prev_hash = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS_HASH)
    row: dict[str, object] = {
        "seq": seq,
        "kind": kind,
        "campaign_id": campaign_id,
        "action_id": action_id,
        "member_ref": member_ref,
        "provider_ref": provider_ref,
        "business_date": business_date,
        "created_at": _now(now),
        "memo": memo,
    }
    digest = postings.chain_hash(prev_hash, row, entries)
    transaction_id = connection.execute(
        ledger_transactions.insert()
        .values(**row, prev_hash=prev_hash, hash=digest)
        .returning(_T.id)
    ).scalar_one()
    connection.execute(
        ledger_entries.insert(),
        [
            {
                "transaction_id": transaction_id,
                "account": e.account,
                "amount_minor": e.amount_minor,
                "currency": e.currency,
            }
            for e in entries
        ],
    )
    connection.execute(
        update(ledger_accounts)
        .where(_A.account == bindparam("entry_account"))
        .values(balance_minor=_A.balance_minor + bindparam("entry_amount")),
        [{"entry_account": e.account, "entry_amount": e.amount_minor} for e in entries],
    )
    return int(transaction_id)


# --- one action's reward ----------------------------------------------------------------


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
    _lock(connection)
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
    _ensure_campaign(connection, campaign_id, amount.currency)
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
        _append(
            connection,
            "fund",
            campaign_id,
            postings.fund(campaign_id, shortfall),
            business_date=business_date,
            memo=f"funded on demand for action {action_id}: the campaign has no budget",
            now=now,
        )
    _append(
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
    _lock(connection)
    history = _history(connection, action_id)
    if kind in history.posted:
        return False
    reserved, estimate = history.require_reserved()
    if history.state not in allowed:
        raise RewardError(f"action {action_id}: cannot {kind} a reward that is {history.state}")
    _append(
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


# Balances, funding, verification and export live in their own modules; they are named
# here too, so ``from store import ledger`` gives the whole ledger.
from store.ledger_audit import (  # noqa: E402
    EXPORT_COLUMNS,
    Problem,
    VerifyResult,
    export_entries,
    verify,
)
from store.ledger_funding import (  # noqa: E402
    Balance,
    CampaignBalances,
    FundingChange,
    LedgerBudgets,
    balances,
    campaign_balances,
    sync_funding,
)

__all__ = [
    "EXPORT_COLUMNS",
    "LEDGER_LOCK_KEY",
    "Balance",
    "CampaignBalances",
    "FundingChange",
    "LedgerBudgets",
    "Problem",
    "VerifyResult",
    "balances",
    "campaign_balances",
    "expire",
    "export_entries",
    "issue",
    "ledger_transaction",
    "redeem",
    "reserve",
    "reward_state",
    "sync_funding",
    "verify",
    "void",
]
