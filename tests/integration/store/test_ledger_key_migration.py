"""Migration 0008 on SQLite and PostgreSQL: a ledger written before keys existed still
verifies after the upgrade, keeps its append-only triggers, and is keyed from the first
transaction written with a key on."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import DBAPIError

from domain import postings
from domain.ledger_keys import LedgerKey, LedgerKeys
from store import ledger
from store.engine import create_store_engine
from store.ledger import tables
from store.migrate import _config, upgrade
from tests.integration.store.test_ledger import reserve

KEY = LedgerKey(b"the-key-finance-keeps-0004")


def write_old_ledger(engine: sa.Engine) -> str:
    """What the code before 0008 wrote: a funding transaction hashed with SHA-256 (the
    hash is unchanged since), its entries and the accounts' running balances."""
    accounts = {"funding:USD": ("funding", None, -10_000)}
    for kind in postings.CAMPAIGN_ACCOUNT_KINDS:
        accounts[postings.campaign_account("c", kind)] = (kind, "c", 0)
    accounts["campaign:c:budget"] = ("budget", "c", 10_000)
    entries = [
        postings.Entry("funding:USD", -10_000, "USD"),
        postings.Entry("campaign:c:budget", 10_000, "USD"),
    ]
    header: dict[str, object] = {
        "seq": 1,
        "kind": "fund",
        "campaign_id": "c",
        "action_id": None,
        "member_ref": None,
        "provider_ref": None,
        "business_date": date(2026, 11, 3),
        "created_at": datetime(2026, 11, 3, 2, 0, 0, 123456),
        "memo": "fund 100.00 USD: total in the campaign file",
    }
    digest = postings.chain_hash(postings.GENESIS_HASH, header, entries)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(tables.ledger_accounts),
            [
                {"account": a, "kind": k, "campaign_id": c, "currency": "USD"}
                | {"balance_minor": b}
                for a, (k, c, b) in accounts.items()
            ],
        )
        tid = connection.execute(
            sa.insert(tables.ledger_transactions)
            .values(**header, prev_hash=postings.GENESIS_HASH, hash=digest)
            .returning(tables.ledger_transactions.c.id)
        ).scalar_one()
        connection.execute(
            sa.insert(tables.ledger_entries),
            [
                {"transaction_id": tid, "account": e.account, "amount_minor": e.amount_minor}
                | {"currency": e.currency}
                for e in entries
            ],
        )
    return digest


def test_an_old_ledger_still_verifies_and_is_keyed_from_the_next_transaction(
    db_url: str,
) -> None:
    engine = create_store_engine(db_url)
    try:
        command.upgrade(_config(engine), "0007")
        old_head = write_old_ledger(engine)
        upgrade(engine)

        with engine.connect() as connection:
            before = ledger.verify(connection, LedgerKeys(KEY))
            assert connection.execute(sa.select(tables.ledger_transactions.c.key_id)).all() == [
                (None,)
            ]
        assert before.ok, before.problems
        assert (before.head_hash, before.keyed_from) == (old_head, None)

        ledger.use_keys(engine, LedgerKeys(KEY))
        reserve(engine, "a1")
        reserve(engine, "a2")
        with engine.connect() as connection:
            after = ledger.verify(connection, head=ledger.LedgerHead(1, old_head))
        assert after.ok, after.problems
        assert (after.keyed_from, after.key_ids, after.head_seq) == (2, (KEY.id,), 3)

        # Still append-only: the migration added a column without touching the triggers.
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.update(tables.ledger_transactions).values(key_id=None))
    finally:
        engine.dispose()
