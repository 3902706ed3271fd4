"""dispatch: action progress columns, the run lease

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_STAMPS = ("reserved_at", "issued_at", "sending_at", "sent_at", "finished_at")


def upgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reward_ref", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(length=200), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        for stamp in _STAMPS:
            batch.add_column(sa.Column(stamp, sa.DateTime(), nullable=True))
    op.create_index("ix_actions_state_as_of", "actions", ["state", "as_of"])

    op.create_table(
        "run_lease",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_run_lease")),
    )


def downgrade() -> None:
    op.drop_table("run_lease")
    op.drop_index("ix_actions_state_as_of", table_name="actions")
    with op.batch_alter_table("actions") as batch:
        for stamp in reversed(_STAMPS):
            batch.drop_column(stamp)
        batch.drop_column("attempts")
        batch.drop_column("message_id")
        batch.drop_column("reward_ref")
        batch.drop_column("reason")
