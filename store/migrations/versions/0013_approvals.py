"""approvals: rewards above approval_above wait for a person's decision

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "awaiting_approval" is 17 characters. PostgreSQL widens the column in place; SQLite
    # does not enforce a VARCHAR's length, and copying the actions table (which other
    # tables refer to) is what a migration must not do there, so only its declared type
    # changes, in the schema text SQLite keeps.
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_declared_type("actions", "state", "VARCHAR(16)", "VARCHAR(32)")
    else:
        op.alter_column(
            "actions", "state", type_=sa.String(length=32), existing_nullable=False
        )
    op.create_table(
        "approvals",
        sa.Column("action_id", sa.String(length=32), nullable=False),
        sa.Column("threshold", sa.String(length=40), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["action_id"], ["actions.action_id"]),
        sa.PrimaryKeyConstraint("action_id"),
    )
    op.create_index(
        "ix_approvals_decision_expires_at", "approvals", ["decision", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_approvals_decision_expires_at", table_name="approvals")
    op.drop_table("approvals")
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_declared_type("actions", "state", "VARCHAR(32)", "VARCHAR(16)")
    else:
        op.alter_column(
            "actions", "state", type_=sa.String(length=16), existing_nullable=False
        )


def _sqlite_declared_type(table: str, column: str, old: str, new: str) -> None:
    """Change one column's declared type in SQLite's schema text, without copying the table
    (SQLite's documented way for changes that do not alter the stored data: section 7 of
    https://www.sqlite.org/lang_altertable.html)."""
    bind = op.get_bind()
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    before = f"{column} {old}"
    if before not in sql:
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (sql.replace(before, f"{column} {new}", 1), table),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
