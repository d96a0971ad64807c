"""Retention and legal hold (#11): channels can be archived; legal holds on users and channels; what a
recall took from a held message (its body and its files), kept for the hold; an index to find a message's
file references when retention deletes the message.

Revision ID: 0013_retention_holds
Revises: 0012_org_permissions
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_retention_holds"
down_revision = "0012_org_permissions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_channels") as batch:
        batch.add_column(sa.Column("archived_at", sa.Float(), nullable=True))
    op.create_index("ix_chat_file_refs_message", "chat_file_refs", ["message_id"])
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), server_default="default", nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("users", sa.Text(), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("lifted_at", sa.Float(), nullable=True),
        sa.Column("lifted_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_legal_holds"),
    )
    op.create_index("ix_legal_holds_org_id", "legal_holds", ["org_id", "lifted_at"])
    op.create_table(
        "held_copies",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), server_default="default", nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("recalled_at", sa.Float(), nullable=False),
        sa.Column("recalled_by", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_held_copies"),
    )
    op.create_index("ix_held_copies_channel_id", "held_copies", ["channel_id", "created_at"])
    op.create_table(
        "held_files",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), server_default="default", nullable=False),
        sa.PrimaryKeyConstraint("message_id", "file_id", name="pk_held_files"),
    )
    op.create_index("ix_held_files_file_id", "held_files", ["file_id"])


def downgrade() -> None:
    op.drop_index("ix_held_files_file_id", table_name="held_files")
    op.drop_table("held_files")
    op.drop_index("ix_held_copies_channel_id", table_name="held_copies")
    op.drop_table("held_copies")
    op.drop_index("ix_legal_holds_org_id", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_index("ix_chat_file_refs_message", table_name="chat_file_refs")
    with op.batch_alter_table("chat_channels") as batch:
        batch.drop_column("archived_at")
