"""ledger key id: which key's HMAC each transaction's hash is (NULL: plain SHA-256)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00.000000

Existing transactions keep NULL: they were hashed without a key and still verify as they
are. Adding a nullable column rewrites no row, so the append-only triggers are not touched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "ledger_transactions", sa.Column("key_id", sa.String(length=16), nullable=True)
    )


def downgrade() -> None:
    # Not a batch (table-copying) operation: on SQLite that would drop the append-only
    # triggers with the old table. SQLite has had DROP COLUMN since 3.35.
    op.execute("ALTER TABLE ledger_transactions DROP COLUMN key_id")
