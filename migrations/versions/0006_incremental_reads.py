"""source_state.last_full_at and read_from: incremental reads between full reads (sync.full_every)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('source_state') as batch:
        batch.add_column(sa.Column('last_full_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('read_from', sa.DateTime(timezone=True), nullable=True))
    # every trusted read so far was a full one; the next delta starts where the last one began
    op.execute('UPDATE source_state SET last_full_at = last_good_at, read_from = last_good_at')


def downgrade() -> None:
    with op.batch_alter_table('source_state') as batch:
        batch.drop_column('read_from')
        batch.drop_column('last_full_at')
