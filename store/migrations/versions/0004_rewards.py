"""rewards: issued rewards, gift fulfilment requests, sync cursors

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("action_id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("member_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("value_text", sa.String(length=200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("percent_off", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("customer", sa.String(length=200), nullable=True),
        sa.Column("coupon_id", sa.String(length=200), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("discount_id", sa.String(length=200), nullable=True),
        sa.Column("redeemed_at", sa.BigInteger(), nullable=True),
        sa.Column("redeemed_minor", sa.BigInteger(), nullable=True),
        sa.Column("redeemed_event", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_pk"], ["members.id"], name=op.f("fk_rewards_member_pk_members")),
        sa.PrimaryKeyConstraint("action_id", name=op.f("pk_rewards")),
    )
    op.create_index("ix_rewards_provider_ref", "rewards", ["provider_ref"])
    op.create_index("ix_rewards_discount_id", "rewards", ["discount_id"])
    op.create_index("ix_rewards_state_expires_at", "rewards", ["state", "expires_at"])

    op.create_table(
        "gifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("member_pk", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(length=200), nullable=False),
        sa.Column("cost_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("recipient", sa.String(length=400), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("address_line1", sa.String(length=200), nullable=True),
        sa.Column("address_line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=200), nullable=True),
        sa.Column("postal_code", sa.String(length=32), nullable=True),
        sa.Column("region", sa.String(length=200), nullable=True),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("shipped_at", sa.DateTime(), nullable=True),
        sa.Column("tracking", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["member_pk"], ["members.id"], name=op.f("fk_gifts_member_pk_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gifts")),
        sa.UniqueConstraint("action_id", name=op.f("uq_gifts_action_id")),
    )
    op.create_index("ix_gifts_status", "gifts", ["status"])

    op.create_table(
        "sync_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_cursors")),
    )


def downgrade() -> None:
    op.drop_table("sync_cursors")
    op.drop_index("ix_gifts_status", table_name="gifts")
    op.drop_table("gifts")
    op.drop_index("ix_rewards_state_expires_at", table_name="rewards")
    op.drop_index("ix_rewards_discount_id", table_name="rewards")
    op.drop_index("ix_rewards_provider_ref", table_name="rewards")
    op.drop_table("rewards")
