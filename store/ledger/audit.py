"""Ledger verification and export: ``verify`` walks the hash chain once and
checks every transaction (with the ledger keys, the keyed ones too), the running balances,
that no campaign is overspent and, given an exported head, that the chain still reaches it;
``export_entries`` gives finance one row per entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, and_, func, select

from domain import postings
from domain.ledger_keys import LedgerKeys
from domain.postings import Entry
from nudgeflow.money import format_minor_units
from store.ledger.chain import ChainWalk, LedgerHead, head_problem
from store.ledger.journal import keys_of
from store.ledger.tables import ledger_accounts, ledger_entries, ledger_transactions

_T = ledger_transactions.c
_E = ledger_entries.c
_A = ledger_accounts.c

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
    head_seq: int = 0
    keyed_from: int | None = None  # the first keyed transaction's seq; None: none is keyed
    key_ids: tuple[str, ...] = ()  # the keys the chain was written with, oldest first
    unchecked: int = 0  # keyed transactions whose hash was not checked: no key was given

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


def verify(
    connection: Connection, keys: LedgerKeys | None = None, head: LedgerHead | None = None
) -> VerifyResult:
    """Check the whole ledger, streaming it once in chain order.

    Per transaction: it links to the previous hash, its entries balance per currency and
    match their accounts, and its stored hash matches its contents: SHA-256, or for a keyed
    transaction the HMAC under its key (``keys``, by default the engine's). Without any key,
    keyed transactions' hashes cannot be checked (``unchecked``); with keys, a transaction
    keyed with a key not given, or an unkeyed one after keyed ones, is a forgery. The first
    transaction that fails is reported (later ones are not judged: after a break the chain
    proves nothing). Per campaign, at the end: reserved + outstanding + spent ≤ funded,
    naming the transaction that last took the campaign over its funding. With an exported
    ``head``: the transaction at its seq still has its hash.
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
            _T.key_id,
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
    counts = {"transactions": 0, "entries": 0, "seq": 0}
    chain = ChainWalk(keys if keys is not None else keys_of(connection))
    at_head: tuple[int, str, str] | None = None  # (id, hash, campaign) at the head's seq
    current: dict[str, object] | None = None
    entries: list[Entry] = []

    def finish(txn: Mapping[str, object], posted: list[Entry]) -> None:
        nonlocal at_head
        counts["transactions"] += 1
        counts["entries"] += len(posted)
        seq, tid = int(str(txn["seq"])), int(str(txn["id"]))
        counts["seq"] = seq
        if not problems:
            reason: str | None = None
            if txn["prev_hash"] != chain.head:
                reason = (
                    f"its previous hash {str(txn['prev_hash'])[:12]}… does not match the "
                    f"hash {chain.head[:12]}… of the transaction before it (a transaction "
                    "was removed, inserted or reordered)"
                )
            else:
                reason = _check_transaction(txn, posted, accounts)
            if reason is None:
                reason = chain.hash_problem(txn, posted)
            if reason is not None:
                problems.append(Problem(reason, seq, tid, str(txn["campaign_id"])))
        if head is not None and seq == head.seq:
            at_head = (tid, str(txn["hash"]), str(txn["campaign_id"]))
        chain.advance(txn)
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
    if head is not None:
        found = at_head[1] if at_head is not None else None
        reason = head_problem(head, found, counts["seq"])
        if reason is not None and at_head is not None:
            problems.append(Problem(reason, head.seq, at_head[0], at_head[2]))
        elif reason is not None:
            problems.append(Problem(reason))
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
        counts["transactions"],
        counts["entries"],
        chain.head,
        len(running),
        tuple(problems),
        head_seq=counts["seq"],
        keyed_from=chain.keyed_from,
        key_ids=tuple(chain.key_ids),
        unchecked=chain.unchecked,
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
