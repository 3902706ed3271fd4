"""erasures and forgotten_refs: receipts of forgotten members and keyed references to them

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The JSON type of store.metadata.Json, written out so the revision stays as it is.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_pk", sa.Integer(), nullable=False),
        sa.Column("member_ref", sa.String(length=16), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.Column("erased_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("removed", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_erasures_member_pk_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasures")),
        sa.UniqueConstraint("member_pk", name=op.f("uq_erasures_member_pk")),
    )
    op.create_table(
        "forgotten_refs",
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("erasure_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["erasure_id"], ["erasures.id"], name=op.f("fk_forgotten_refs_erasure_id_erasures")
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_forgotten_refs")),
    )


def downgrade() -> None:
    op.drop_table("forgotten_refs")
    op.drop_table("erasures")
