"""sources: the campaign and template files behind each run and action

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "sources",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("campaigns_sha256", sa.String(length=64), nullable=False),
        sa.Column("templates_sha256", sa.String(length=64), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("files", json, nullable=False),
        sa.Column("campaign_files", json, nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_sources")),
    )
    # NULL for the runs and actions before this migration: their files were not recorded.
    # Plain ADD COLUMNs: SQLite adds a nullable column in place.
    op.add_column("runs", sa.Column("source_digest", sa.String(length=64), nullable=True))
    op.add_column("actions", sa.Column("source_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("source_digest")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("source_digest")
    op.drop_table("sources")
