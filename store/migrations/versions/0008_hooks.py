"""Webhooks: incoming hooks, Git receivers and outgoing hooks (hooks), their deliveries (hook_deliveries).

Revision ID: 0008_hooks
Revises: 0007_bots_commands
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_hooks"
down_revision = "0007_bots_commands"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hooks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("bot_login", sa.String(128), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("salt", sa.String(64), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("trigger_words", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hooks"),
    )
    op.create_index("ix_hooks_kind", "hooks", ["kind", "channel_id"])
    op.create_table(
        "hook_deliveries",
        sa.Column("hook_id", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["hook_id"], ["hooks.id"], name="fk_hook_deliveries_hook_id_hooks",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("hook_id", "delivery_id", name="pk_hook_deliveries"),
    )
    op.create_index("ix_hook_deliveries_recent", "hook_deliveries", ["hook_id", "updated_at"])
    op.create_index("ix_hook_deliveries_created", "hook_deliveries", ["created_at"])


def downgrade() -> None:
    op.drop_table("hook_deliveries")
    op.drop_table("hooks")
