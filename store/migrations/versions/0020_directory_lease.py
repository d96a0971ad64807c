"""The directory sync's run is a lease (#10): directory_status.holder names the process whose run holds
`running_since`, so two processes never sync an organisation at once and only the holder ends the run.

Revision ID: 0020_directory_lease
Revises: 0019_scheduled_meetings
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_directory_lease"
down_revision = "0019_scheduled_meetings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_status") as batch:
        batch.add_column(sa.Column("holder", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("directory_status") as batch:
        batch.drop_column("holder")
