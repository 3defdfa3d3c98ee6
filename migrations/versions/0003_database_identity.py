"""database_identity: one row naming this staging database (a lost or swapped database is detected)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:50:00
"""

import datetime as dt
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        'database_identity',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_database_identity')),
    )
    now = dt.datetime.now(dt.UTC)
    if op.get_bind().dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # as syncd.db.models.UTCDateTime stores it
    op.bulk_insert(table, [{'id': str(uuid.uuid4()), 'created_at': now}])


def downgrade() -> None:
    op.drop_table('database_identity')
