"""actions and tag dates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:17:59.824056
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('actions',
    sa.Column('action_id', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.String(length=64), nullable=False),
    sa.Column('member_pk', sa.Integer(), nullable=False),
    sa.Column('occurrence', sa.String(length=16), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('holdout', sa.Boolean(), nullable=False),
    sa.Column('reward', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('cost_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('response_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('response_from', sa.BigInteger(), nullable=False),
    sa.Column('response_until', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_pk'], ['members.id'], name=op.f('fk_actions_member_pk_members')),
    sa.PrimaryKeyConstraint('action_id', name=op.f('pk_actions')),
    sa.UniqueConstraint('campaign_id', 'member_pk', 'occurrence', name=op.f('uq_actions_campaign_id_member_pk_occurrence'))
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index('ix_actions_as_of', ['as_of'], unique=False)
        batch_op.create_index('ix_actions_member_pk_as_of', ['member_pk', 'as_of'], unique=False)

    with op.batch_alter_table('member_tags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('added_on', sa.Date(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('member_tags', schema=None) as batch_op:
        batch_op.drop_column('added_on')

    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index('ix_actions_member_pk_as_of')
        batch_op.drop_index('ix_actions_as_of')

    op.drop_table('actions')
