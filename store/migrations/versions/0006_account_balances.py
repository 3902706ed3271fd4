"""ledger account balances: a running balance per account, kept with every append

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 11:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, also on SQLite: batch mode would copy and drop ledger_accounts,
    # which the ledger's entries reference (the drop fails with foreign keys on).
    op.add_column(
        "ledger_accounts",
        sa.Column("balance_minor", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.execute(
        "UPDATE ledger_accounts SET balance_minor = COALESCE((SELECT SUM(e.amount_minor) "
        "FROM ledger_entries e WHERE e.account = ledger_accounts.account), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("ledger_accounts") as batch:
        batch.drop_column("balance_minor")
