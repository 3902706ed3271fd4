"""The reward ledger: double-entry, append-only and hash-chained.

``journal`` holds the write transaction, the append lock, the engine's ledger keys and the
append itself; ``moves`` each reward's reserve, issue, redeem, expire and void; ``funding``
the balances (now or at a past date) and the funding that follows the campaign files;
``audit`` verification and export, with ``chain`` checking the hash chain and an exported
head; ``statement`` a month's close and its tie-out; ``tables`` the tables.
This face names what callers use: ``from store import ledger; ledger.reserve(...)``. Every
function runs in the caller's ``ledger_transaction`` and commits nothing.
"""

from __future__ import annotations

from store.ledger.audit import EXPORT_COLUMNS, Problem, VerifyResult, export_entries, verify
from store.ledger.chain import LedgerHead
from store.ledger.funding import (
    Balance,
    CampaignBalances,
    FundingChange,
    LedgerBudgets,
    balances,
    campaign_balances,
    sync_funding,
)
from store.ledger.journal import LEDGER_LOCK_KEY, keys_of, ledger_transaction, use_keys
from store.ledger.moves import expire, issue, redeem, reserve, reward_state, void
from store.ledger.statement import (
    Statement,
    StatementLine,
    statement,
    statement_columns,
    statement_rows,
)

__all__ = [
    "EXPORT_COLUMNS",
    "LEDGER_LOCK_KEY",
    "Balance",
    "CampaignBalances",
    "FundingChange",
    "LedgerBudgets",
    "LedgerHead",
    "Problem",
    "Statement",
    "StatementLine",
    "VerifyResult",
    "balances",
    "campaign_balances",
    "expire",
    "export_entries",
    "issue",
    "keys_of",
    "ledger_transaction",
    "redeem",
    "reserve",
    "reward_state",
    "statement",
    "statement_columns",
    "statement_rows",
    "sync_funding",
    "use_keys",
    "verify",
    "void",
]
