"""actions.variant: which A/B/n variant of its campaign an action was assigned

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: the campaign has no variants, or the member was held out (the control group of
    # every variant). Existing actions predate variants. A plain ADD COLUMN: SQLite adds a
    # nullable column in place, without copying the table.
    op.add_column("actions", sa.Column("variant", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("variant")
