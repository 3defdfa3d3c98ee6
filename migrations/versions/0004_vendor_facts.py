"""vendor_facts: what syncd learned about a vendor and keeps across runs (the WORKBOX signature variant)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'vendor_facts',
        sa.Column('vendor', sa.String(length=16), nullable=False),
        sa.Column('fact', sa.String(length=64), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.Column('learned_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('vendor', 'fact', name=op.f('pk_vendor_facts')),
    )


def downgrade() -> None:
    op.drop_table('vendor_facts')
