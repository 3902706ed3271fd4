"""The reward ledger (DESIGN.md §8): appends, moves, funding, balances, verification, export.

Every function runs in the caller's transaction and commits nothing. Open that transaction
with ``ledger_transaction(engine)``: on SQLite it is ``BEGIN IMMEDIATE`` (the write lock is
taken before the first read, so a reservation's balance check and its insert see the same
ledger); on PostgreSQL it is an ordinary transaction in which every ledger write first takes
``pg_advisory_xact_lock(LEDGER_LOCK_KEY)``. Appends are therefore serialised on both
databases, which is what keeps the hash chain a chain and ``seq`` gap-free.

Budgets cannot be overspent: ``reserve`` locks the campaign's budget account row, sums the
budget's entries and refuses when the reservation would take it below zero, all under the
append lock. Two overlapping runs in two processes cannot both spend the last reward.
(On SQLite even a caller that forgot ``ledger_transaction`` cannot overspend: a deferred
transaction that read a stale balance fails with ``SQLITE_BUSY_SNAPSHOT`` when it writes.)

Each move (reserve, issue, redeem, expire, void) is idempotent per action: repeating one that
is already in the ledger posts nothing, and the ``(action_id, kind)`` unique constraint makes
the database refuse a double posting even if this code were wrong. Impossible moves (redeem
before issue, issue after void, …) raise ``RewardError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, bindparam, case, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from nudgeflow.errors import RewardError
from nudgeflow.money import Money, format_minor_units
from planning.campaign import Campaign
from rewards import postings
from rewards.postings import GENESIS_HASH, Entry, campaign_account, funding_account
from store.ledger_tables import ledger_accounts, ledger_entries, ledger_transactions

# pg_advisory_xact_lock key that serialises ledger appends ("ledger" in ASCII).
LEDGER_LOCK_KEY = 0x6C6564676572

_T = ledger_transactions.c
_E = ledger_entries.c
_A = ledger_accounts.c


# --- transactions and locking -----------------------------------------------------------


@contextmanager
def ledger_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction for ledger work: commit on success, roll back on any exception.

    SQLite: the ``sqlite3`` driver would open a *deferred* transaction on the first write,
    after our balance reads; two processes could then both read the same balance and one
    would fail on upgrade. So the driver's own transaction handling is switched off for this
    connection (AUTOCOMMIT isolation) and we issue ``BEGIN IMMEDIATE``/``COMMIT`` ourselves:
    the write lock is held from the first statement (``busy_timeout`` makes others wait).
    """
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                yield connection
            return
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")


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


# --- balances and funding ---------------------------------------------------------------


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


def balances(connection: Connection) -> list[Balance]:
    """Every account's balance (zero for accounts without entries), one grouped query."""
    rows = connection.execute(
        select(
            _A.account,
            _A.campaign_id,
            _A.kind,
            _A.currency,
            func.coalesce(func.sum(_E.amount_minor), 0),
        )
        .select_from(ledger_accounts.outerjoin(ledger_entries, _E.account == _A.account))
        .group_by(_A.account, _A.campaign_id, _A.kind, _A.currency)
        .order_by(_A.campaign_id.is_(None), _A.campaign_id, _A.account)
    ).all()
    return [Balance(a, c, k, cur, int(total)) for a, c, k, cur, total in rows]


def campaign_balances(
    connection: Connection, month_start: date | None = None
) -> dict[str, CampaignBalances]:
    """Per campaign: the four balances, what was funded, and (for per-month funding) what
    was committed by transactions dated before ``month_start``."""
    # Without a month, nothing counts as "before" (date.min precedes every business date).
    before = _T.business_date < (month_start or date.min)
    funding_kind = _T.kind.in_(("fund", "defund"))
    rows = connection.execute(
        select(
            _A.campaign_id,
            _A.kind,
            _A.currency,
            func.coalesce(func.sum(_E.amount_minor), 0),
            func.coalesce(func.sum(case((funding_kind, _E.amount_minor), else_=0)), 0),
            func.coalesce(func.sum(case((before, _E.amount_minor), else_=0)), 0),
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
    for campaign_id, kind, currency, total, funded, earlier in rows:
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
    _lock(connection)
    for campaign in campaigns:
        if campaign.budget is not None:
            _ensure_campaign(connection, campaign.id, campaign.budget.currency)
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
        _append(
            connection, kind, campaign_id, entries, business_date=business_date, memo=memo, now=now
        )
        changes.append(FundingChange(campaign_id, kind, money, Money(target, currency), memo))
    return changes


class LedgerBudgets:
    """``planning.plan.Budgets`` from the ledger: what each campaign's budget account holds,
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


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    reason: str
    seq: int | None = None
    transaction_id: int | None = None
    campaign_id: str | None = None

    def __str__(self) -> str:
        where = f"transaction {self.transaction_id} (seq {self.seq})" if self.seq else ""
        if self.campaign_id and not where:
            where = f"campaign {self.campaign_id}"
        return f"{where}: {self.reason}" if where else self.reason


@dataclass(frozen=True)
class VerifyResult:
    transactions: int
    entries: int
    head_hash: str
    campaigns: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


@dataclass
class _Running:
    funded: int = 0
    committed: int = 0
    currency: str = ""
    over_since: tuple[int, int] | None = None  # (seq, id) that last took it over funding


def _check_transaction(
    header: Mapping[str, object],
    entries: Sequence[Entry],
    accounts: Mapping[str, tuple[str | None, str, str]],
) -> str | None:
    """Why one transaction is broken, or None. ``accounts``: account → (campaign, kind, cur)."""
    if not entries:
        return "has no entries"
    off = postings.imbalance(entries)
    if off:
        detail = ", ".join(
            f"{format_minor_units(total, cur)} {cur}" for cur, total in sorted(off.items())
        )
        return f"entries do not balance: they sum to {detail}"
    for entry in entries:
        campaign_id, _kind, currency = accounts.get(entry.account, (None, "", "?"))
        if currency != entry.currency:
            return f"entry on {entry.account} is in {entry.currency}, the account in {currency}"
        if campaign_id is not None and campaign_id != header["campaign_id"]:
            return f"touches {entry.account}, an account of another campaign"
    return None


def verify(connection: Connection) -> VerifyResult:
    """Check the whole ledger, streaming it once in chain order.

    Per transaction: it links to the previous hash, its entries balance per currency and
    match their accounts, and its stored hash matches its contents. The first transaction
    that fails is reported (later ones are not judged: after a break the chain proves
    nothing). Per campaign, at the end: reserved + outstanding + spent ≤ funded, naming the
    transaction that last took the campaign over its funding.
    """
    accounts = {
        str(a): (c, str(k), str(cur))
        for a, c, k, cur in connection.execute(
            select(_A.account, _A.campaign_id, _A.kind, _A.currency)
        ).all()
    }
    rows = connection.execute(
        select(
            _T.id,
            _T.seq,
            _T.kind,
            _T.campaign_id,
            _T.action_id,
            _T.member_ref,
            _T.provider_ref,
            _T.business_date,
            _T.created_at,
            _T.memo,
            _T.prev_hash,
            _T.hash,
            _E.account,
            _E.amount_minor,
            _E.currency,
        )
        .select_from(ledger_transactions.outerjoin(ledger_entries, _E.transaction_id == _T.id))
        .order_by(_T.seq, _E.id)
        .execution_options(yield_per=5000)
    ).mappings()
    problems: list[Problem] = []
    running: dict[str, _Running] = {}
    counts = {"transactions": 0, "entries": 0}
    head = GENESIS_HASH
    current: dict[str, object] | None = None
    entries: list[Entry] = []

    def finish(txn: Mapping[str, object], posted: list[Entry]) -> None:
        nonlocal head
        counts["transactions"] += 1
        counts["entries"] += len(posted)
        seq, tid = int(str(txn["seq"])), int(str(txn["id"]))
        if not problems:
            reason: str | None = None
            if txn["prev_hash"] != head:
                reason = (
                    f"its previous hash {str(txn['prev_hash'])[:12]}… does not match the "
                    f"hash {head[:12]}… of the transaction before it (a transaction was "
                    "removed, inserted or reordered)"
                )
            else:
                reason = _check_transaction(txn, posted, accounts)
            if reason is None:
                expected = postings.chain_hash(head, _header(txn), posted)
                if expected != txn["hash"]:
                    reason = "its hash does not match its contents (edited after it was written)"
            if reason is not None:
                problems.append(Problem(reason, seq, tid, str(txn["campaign_id"])))
        head = str(txn["hash"])
        for entry in posted:
            campaign_id, kind, currency = accounts.get(entry.account, (None, "", ""))
            if campaign_id is None:
                continue
            state = running.setdefault(campaign_id, _Running(currency=currency))
            if kind in ("reserved", "outstanding", "spent"):
                state.committed += entry.amount_minor
            elif kind == "budget" and txn["kind"] in ("fund", "defund"):
                state.funded += entry.amount_minor
        mine = running.get(str(txn["campaign_id"]))
        if mine is not None:
            if mine.committed > mine.funded and mine.over_since is None:
                mine.over_since = (seq, tid)
            elif mine.committed <= mine.funded:
                mine.over_since = None

    for row in rows:
        if current is None or row["id"] != current["id"]:
            if current is not None:
                finish(current, entries)
            current, entries = dict(row), []
        if row["account"] is not None:
            entries.append(Entry(row["account"], int(row["amount_minor"]), row["currency"]))
    if current is not None:
        finish(current, entries)
    if not problems:
        problems.extend(_check_balances(connection))
    for campaign_id, state in sorted(running.items()):
        if state.committed > state.funded and state.over_since is not None:
            seq, tid = state.over_since
            over = format_minor_units(state.committed - state.funded, state.currency)
            problems.append(
                Problem(
                    f"campaign {campaign_id} is overspent by {over} {state.currency}: "
                    f"reserved + outstanding + spent "
                    f"{format_minor_units(state.committed, state.currency)} > funded "
                    f"{format_minor_units(state.funded, state.currency)}",
                    seq,
                    tid,
                    campaign_id,
                )
            )
    return VerifyResult(
        counts["transactions"], counts["entries"], head, len(running), tuple(problems)
    )


def _check_balances(connection: Connection) -> list[Problem]:
    """Every account's running balance equals the sum of its entries (one grouped query)."""
    sums = (
        select(_E.account, func.sum(_E.amount_minor).label("total")).group_by(_E.account).subquery()
    )
    rows = connection.execute(
        select(_A.account, _A.campaign_id, _A.balance_minor, sums.c.total)
        .select_from(ledger_accounts.outerjoin(sums, sums.c.account == _A.account))
        .where(_A.balance_minor != func.coalesce(sums.c.total, 0))
        .order_by(_A.account)
    ).all()
    return [
        Problem(
            f"account {account}: its running balance {balance} differs from the sum of its "
            f"entries {int(total or 0)} (the accounts table was edited)",
            campaign_id=campaign_id,
        )
        for account, campaign_id, balance, total in rows
    ]


# --- export -----------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "transaction_id",
    "seq",
    "time",
    "business_date",
    "campaign_id",
    "member_ref",
    "account",
    "amount",
    "currency",
    "kind",
    "provider_ref",
    "action_id",
    "memo",
    "prev_hash",
    "hash",
)


def export_entries(
    connection: Connection, start: date, end: date, campaign: str | None = None
) -> Iterator[dict[str, str]]:
    """One row per entry of the transactions whose business date is in [start, end], in
    chain order, every value a string (amounts as signed decimals in the currency's
    units; time in ISO 8601 UTC). A generator: consume it inside the connection."""
    condition = and_(_T.business_date >= start, _T.business_date <= end)
    if campaign is not None:
        condition = and_(condition, _T.campaign_id == campaign)
    rows = connection.execute(
        select(
            _T.id,
            _T.seq,
            _T.created_at,
            _T.business_date,
            _T.campaign_id,
            _T.member_ref,
            _E.account,
            _E.amount_minor,
            _E.currency,
            _T.kind,
            _T.provider_ref,
            _T.action_id,
            _T.memo,
            _T.prev_hash,
            _T.hash,
        )
        .join(ledger_entries, _E.transaction_id == _T.id)
        .where(condition)
        .order_by(_T.seq, _E.id)
        .execution_options(yield_per=5000)
    )
    for row in rows:
        created: datetime = row.created_at
        yield {
            "transaction_id": str(row.id),
            "seq": str(row.seq),
            "time": created.replace(tzinfo=UTC).isoformat(timespec="microseconds"),
            "business_date": row.business_date.isoformat(),
            "campaign_id": row.campaign_id,
            "member_ref": row.member_ref or "",
            "account": row.account,
            "amount": format_minor_units(int(row.amount_minor), row.currency),
            "currency": row.currency,
            "kind": row.kind,
            "provider_ref": row.provider_ref or "",
            "action_id": row.action_id or "",
            "memo": row.memo,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
        }
