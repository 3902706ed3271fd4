"""The reward ledger's tables: accounts, transactions and their entries.

The ledger is double-entry and append-only. ``ledger_transactions`` and ``ledger_entries``
are never updated or deleted: database triggers (created by migration 0003) reject UPDATE
and DELETE on both SQLite and PostgreSQL, and each transaction carries the hash of the one
before it, so that ``nudgeflow ledger verify`` notices an edit made with the triggers out of
the way. With a ledger key the hash is an HMAC under it, which someone who can only write the
database cannot recompute (``store.ledger.keyring``).

``ledger_accounts`` holds one row per account: per campaign ``campaign:<id>:budget``,
``…:reserved``, ``…:outstanding`` and ``…:spent``, plus the organisation's
``funding:<currency>``. Each row keeps a running balance, a cache of the sum of its entries
(which stay the truth), and is the row PostgreSQL locks (``SELECT … FOR UPDATE``) while a
reservation checks and spends a budget.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from store.metadata import BigId, metadata

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("account", String(200), primary_key=True),
    Column("campaign_id", String(64)),  # None for the organisation's funding accounts
    Column("kind", String(16), nullable=False),  # funding | budget | reserved | outstanding | spent
    Column("currency", String(3), nullable=False),
    # The sum of the account's entries, kept by every append in the same transaction
    # (migration 0006): a reservation reads one row instead of summing a growing history.
    # It is a cache of the entries, which stay the truth: ``verify`` checks the two agree.
    Column("balance_minor", BigInteger, nullable=False, server_default=text("0")),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", BigId, primary_key=True),
    # The position in the hash chain: gap-free and increasing, assigned under the append lock.
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # fund|defund|reserve|issue|redeem|expire|void
    Column("campaign_id", String(64), nullable=False),
    Column("action_id", String(64)),
    # Pseudonymous member id: HMAC-SHA256(signing key, member_id), hex, first 16 characters.
    # Never the raw member id or email: the ledger is kept for years and exported to finance.
    Column("member_ref", String(16)),
    Column("provider_ref", String(200)),  # e.g. the Stripe promotion code or balance txn id
    Column("business_date", Date, nullable=False),
    Column("created_at", DateTime, nullable=False),  # UTC
    Column("memo", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The id of the ledger key whose HMAC ``hash`` is (``domain.ledger_keys``); NULL: plain
    # SHA-256, as every transaction was before migration 0008 and is without a key.
    Column("key_id", String(16)),
    # At most one transaction of each kind per action: the database itself refuses a double
    # reserve, issue, redeem, expire or void. (NULL action ids — funding — never collide.)
    # Its leading column also serves lookups by action id.
    UniqueConstraint("action_id", "kind"),
    Index("ix_ledger_transactions_campaign_id_business_date", "campaign_id", "business_date"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("transaction_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("account", String(200), ForeignKey("ledger_accounts.account"), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # signed: debit +, credit -
    Column("currency", String(3), nullable=False),
    Index("ix_ledger_entries_account", "account"),
    Index("ix_ledger_entries_transaction_id", "transaction_id"),
)

# What the append-only triggers of migration 0003 say when they refuse an UPDATE or DELETE.
APPEND_ONLY_MESSAGE = "ledger rows are append-only"
