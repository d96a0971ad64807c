"""Watermark (#11): a channel's own watermark setting, chat_channels.watermark (off | important | all; NULL: the
organisation's setting, kept in chat_settings with the other org settings).

Revision ID: 0015_channel_watermark
Revises: 0014_usage_stats
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_channel_watermark"
down_revision = "0014_usage_stats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chat_channels", sa.Column("watermark", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_channels") as batch:
        batch.drop_column("watermark")
