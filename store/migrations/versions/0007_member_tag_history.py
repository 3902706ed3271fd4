"""member tag history: every fatigue tag and clearing, kept after the tag itself is cleared

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_tag_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_pk", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("rest_until", sa.Date(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_pk"],
            ["members.id"],
            name=op.f("fk_member_tag_history_member_pk_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_tag_history")),
    )
    op.create_index(
        "ix_member_tag_history_member_pk_as_of",
        "member_tag_history",
        ["member_pk", "as_of"],
        unique=False,
    )
    # The history starts with the rests already recorded: when each began, and the last day
    # it runs (or ran) through as the tag says now.
    op.execute(
        "INSERT INTO member_tag_history (member_pk, tag, source, change, as_of, rest_until, "
        "reason) SELECT member_pk, tag, source, 'tagged', added_on, expires_on, "
        "'recorded before the history was kept' FROM member_tags "
        "WHERE source = 'system' AND added_on IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_member_tag_history_member_pk_as_of", table_name="member_tag_history")
    op.drop_table("member_tag_history")
