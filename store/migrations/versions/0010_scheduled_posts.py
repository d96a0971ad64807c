"""Scheduled and recurring posts (integrations/): the posts with their next due time, and each run's outcome.

Revision ID: 0010_scheduled_posts
Revises: 0009_directory_users
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_scheduled_posts"
down_revision = "0009_directory_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_posts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("rule_kind", sa.String(8), nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_run", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_run_at", sa.Float(), nullable=True),
        sa.Column("last_outcome", sa.String(16), nullable=True),
        sa.Column("last_error_code", sa.String(64), nullable=True),
        sa.Column("last_message_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled_posts"),
    )
    op.create_index("ix_scheduled_posts_status", "scheduled_posts", ["status", "next_run"])
    op.create_index("ix_scheduled_posts_author", "scheduled_posts", ["author", "created_at"])
    op.create_table(
        "scheduled_post_runs",
        sa.Column("post_id", sa.String(64), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("ran_at", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("post_id", "due_at", name="pk_scheduled_post_runs"),
    )


def downgrade() -> None:
    op.drop_table("scheduled_post_runs")
    op.drop_table("scheduled_posts")
