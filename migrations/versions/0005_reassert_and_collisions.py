"""ledger.asserted_at (drift repair by re-assertion) and workbox_collisions (creates refused because an
unmapped WORKBOX member holds the e-mail address)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ledger') as batch:
        batch.add_column(sa.Column('asserted_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index(batch.f('ix_ledger_asserted_at'), ['asserted_at'], unique=False)
    # what was pushed was asserted then
    op.execute('UPDATE ledger SET asserted_at = pushed_at')
    op.create_table(
        'workbox_collisions',
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('external_key', sa.String(length=36), nullable=False),
        sa.Column('email', sa.String(length=100), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retry_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'external_key', name=op.f('pk_workbox_collisions')),
    )


def downgrade() -> None:
    op.drop_table('workbox_collisions')
    with op.batch_alter_table('ledger') as batch:
        batch.drop_index(batch.f('ix_ledger_asserted_at'))
        batch.drop_column('asserted_at')
