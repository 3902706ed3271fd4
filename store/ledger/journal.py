"""The ledger's journal: the write transaction and append lock, the accounts created on first
use, and ``append``, which adds one balanced transaction at the head of the hash chain.

Every function runs in the caller's transaction and commits nothing. Open that transaction
with ``ledger_transaction(engine)``: on SQLite it is ``BEGIN IMMEDIATE`` (the write lock is
taken before the first read, so a reservation's balance check and its insert see the same
ledger); on PostgreSQL it is an ordinary transaction in which every ledger write first takes
``pg_advisory_xact_lock(LEDGER_LOCK_KEY)`` (``lock``). Appends are therefore serialised on
both databases, which is what keeps the hash chain a chain and ``seq`` gap-free.

The ledger keys (``domain.ledger_keys``) travel with the engine: the composition root gives
its engine the keys once (``use_keys``), and every append through a connection of it is then
keyed with the current key (HMAC instead of SHA-256, the key's id in ``key_id``). They are
not a parameter of every use case because every ledger write already goes through a
connection of the engine, and a write that forgot a key parameter would silently weaken the
chain. An engine given no keys writes the unkeyed chain, as before keys existed; once the
chain is keyed, such an engine refuses to append (an unkeyed transaction after keyed ones is
what a forger without the key would write, and ``verify`` reports it as such).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from domain import postings
from domain.ledger_keys import NO_KEYS, LedgerKeys
from domain.postings import GENESIS_HASH, Entry, campaign_account, funding_account
from nudgeflow.errors import RewardError, StoreError
from store.engine import immediate_transaction
from store.ledger.tables import ledger_accounts, ledger_entries, ledger_transactions

# pg_advisory_xact_lock key that serialises ledger appends ("ledger" in ASCII).
LEDGER_LOCK_KEY = 0x6C6564676572

# The transaction fields covered by the hash, in the order the chain has always used.
HASHED_FIELDS = (
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

_T = ledger_transactions.c
_A = ledger_accounts.c

_KEYS: weakref.WeakKeyDictionary[Engine, LedgerKeys] = weakref.WeakKeyDictionary()
_KEYS_LOCK = threading.Lock()


def use_keys(engine: Engine, keys: LedgerKeys) -> None:
    """From now on, ledger appends through ``engine`` are keyed with ``keys.current``, and
    ``verify`` checks with every key in ``keys``."""
    with _KEYS_LOCK:
        _KEYS[engine] = keys


def keys_of(connection: Connection) -> LedgerKeys:
    """The ledger keys of the connection's engine (``NO_KEYS`` when it was given none)."""
    with _KEYS_LOCK:
        return _KEYS.get(connection.engine, NO_KEYS)


def ledger_transaction(engine: Engine) -> AbstractContextManager[Connection]:
    """A write transaction for ledger work (``store.engine.immediate_transaction``): on
    SQLite the write lock is taken before the first read, so a reservation's balance check
    and its insert see the same ledger."""
    return immediate_transaction(engine)


def lock(connection: Connection) -> None:
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


def ensure_campaign(connection: Connection, campaign_id: str, currency: str) -> None:
    """Create the campaign's accounts (and the funding account of its currency) if missing;
    refuse a currency other than the one its accounts were created in."""
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


def stamp(now: datetime | None) -> datetime:
    """Naive UTC with microseconds, as stored (and hashed)."""
    instant = now if now is not None else datetime.now(UTC)
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC).replace(tzinfo=None)
    return instant


def chain_header(row: Mapping[str, object]) -> dict[str, object]:
    """The transaction fields covered by the hash (not ``id``: the database assigns it)."""
    return {name: row[name] for name in HASHED_FIELDS}


def append(
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
    holds the append lock (``lock``) and has created the accounts (``ensure_campaign``)."""
    if kind not in postings.TRANSACTION_KINDS:
        raise ValueError(f"unknown ledger transaction kind {kind!r}")
    postings.check_balanced(entries)
    head = connection.execute(
        select(_T.seq, _T.hash, _T.key_id).order_by(_T.seq.desc()).limit(1)
    ).one_or_none()
    seq, prev_hash = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS_HASH)
    key = keys_of(connection).current
    if key is None and head is not None and head[2] is not None:
        raise StoreError(
            f"the ledger's hash chain is keyed (its last transaction, seq {head[0]}, with "
            f"ledger key {head[2]}) and this process has no ledger key: set "
            "NUDGEFLOW_LEDGER__KEY as for every process that writes the ledger"
        )
    row: dict[str, object] = {
        "seq": seq,
        "kind": kind,
        "campaign_id": campaign_id,
        "action_id": action_id,
        "member_ref": member_ref,
        "provider_ref": provider_ref,
        "business_date": business_date,
        "created_at": stamp(now),
        "memo": memo,
    }
    digest = postings.chain_hash(prev_hash, row, entries, key.secret if key else None)
    transaction_id = connection.execute(
        ledger_transactions.insert()
        .values(**row, prev_hash=prev_hash, hash=digest, key_id=key.id if key else None)
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
