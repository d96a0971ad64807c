"""Bots with owners, slash commands and their invocations, the server-side half of interactive messages.

Revision ID: 0007_bots_commands
Revises: 0006_audit_log
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_bots_commands"
down_revision = "0006_audit_log"
branch_labels = None
depends_on = None


def _org() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("org_id", sa.String(64), nullable=False, server_default="default")


def upgrade() -> None:
    op.create_table(
        "bots",
        sa.Column("login", sa.String(128), nullable=False),
        _org(),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("signing_secret", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("login", name="pk_bots"),
    )
    op.create_index("ix_bots_owner", "bots", ["owner"])
    op.create_table(
        "slash_commands",
        sa.Column("id", sa.String(32), nullable=False),
        _org(),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_slash_commands"),
        sa.UniqueConstraint("org_id", "trigger", name="uq_slash_commands_trigger"),
    )
    op.create_table(
        "command_invocations",
        sa.Column("id", sa.String(32), nullable=False),
        _org(),
        sa.Column("command_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_login", sa.String(128), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_command_invocations"),
    )
    op.create_index("ix_command_invocations_expires", "command_invocations", ["expires_at"])
    op.create_table(
        "message_actions",
        sa.Column("message_id", sa.String(64), nullable=False),
        _org(),
        sa.Column("bot", sa.String(128), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_message_actions"),
    )


def downgrade() -> None:
    op.drop_table("message_actions")
    op.drop_table("command_invocations")
    op.drop_table("slash_commands")
    op.drop_table("bots")
