"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from store import reward_tables, schema
from store.engine import create_store_engine
from store.ledger import tables as ledger_tables
from store.metadata import metadata
from store.migrate import _config, upgrade

TABLE_MODULES = (schema, reward_tables, ledger_tables)  # so that metadata holds every table


def test_migrated_database_matches_the_declared_schema(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_upgrading_a_database_with_a_ledger_keeps_it_and_fills_the_balances(
    tmp_path: Path,
) -> None:
    # SQLite with foreign keys on is where a table-copying migration would fail.
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(_config(engine), "0005")
    with engine.begin() as connection:
        for account, kind in (("funding:USD", "funding"), ("campaign:c:budget", "budget")):
            connection.execute(
                sa.text(
                    "INSERT INTO ledger_accounts (account, campaign_id, kind, currency) "
                    "VALUES (:a, :c, :k, 'USD')"
                ),
                {"a": account, "c": None if kind == "funding" else "c", "k": kind},
            )
        connection.execute(
            sa.text(
                "INSERT INTO ledger_transactions (id, seq, kind, campaign_id, business_date, "
                "created_at, memo, prev_hash, hash) VALUES (1, 1, 'fund', 'c', '2026-11-01', "
                "'2026-11-01 00:00:00', 'fund', 'x', 'y')"
            )
        )
        for account, amount in (("funding:USD", -5000), ("campaign:c:budget", 5000)):
            connection.execute(
                sa.text(
                    "INSERT INTO ledger_entries (transaction_id, account, amount_minor, "
                    "currency) VALUES (1, :a, :m, 'USD')"
                ),
                {"a": account, "m": amount},
            )
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT account, balance_minor FROM ledger_accounts"))
        balances = {str(account): int(balance) for account, balance in rows}
        assert connection.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar() == 2
    assert balances == {"funding:USD": -5000, "campaign:c:budget": 5000}
