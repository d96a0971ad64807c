"""Usage analytics (#11): daily rollups (usage_daily), who was active on which day (user_activity), who
joined which meeting (meeting_participants), and how each
message was posted (chat_messages.via: web | api; NULL before this revision), with an index on chat_messages'
created_at so a day's messages are a range scan.

Revision ID: 0014_usage_stats
Revises: 0013_retention_holds
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_usage_stats"
down_revision = "0013_retention_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("org_id", sa.String(64), server_default="default", nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("dimension", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "day", "metric", "dimension", name="pk_usage_daily"),
    )
    op.create_table(
        "user_activity",
        sa.Column("org_id", sa.String(64), server_default="default", nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("login", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "day", "login", name="pk_user_activity"),
    )
    op.create_table(
        "meeting_participants",
        sa.Column("org_id", sa.String(64), server_default="default", nullable=False),
        sa.Column("meeting_id", sa.String(64), nullable=False),
        sa.Column("identity", sa.String(128), nullable=False),
        sa.Column("joined_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", "identity", name="pk_meeting_participants"),
    )
    op.add_column("chat_messages", sa.Column("via", sa.String(16), nullable=True))
    op.create_index("ix_chat_messages_created", "chat_messages", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_messages_created", table_name="chat_messages")
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("via")
    op.drop_table("meeting_participants")
    op.drop_table("user_activity")
    op.drop_table("usage_daily")
