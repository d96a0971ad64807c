"""Chat tables: counters, settings, users, channels, members, messages, search terms, files, file refs.

Revision ID: 0001_chat
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_chat"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_counters"),
    )
    # The chat write counter starts at 0 (an importer raises it past the ords and seqs it copies).
    op.bulk_insert(sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
                   [{"name": "chat_seq", "value": 0}])
    op.create_table(
        "chat_settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_chat_settings"),
    )
    op.create_table(
        "chat_users",
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("login", name="pk_chat_users"),
    )
    op.create_table(
        "chat_channels",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_chat_channels"),
        sa.UniqueConstraint("name", name="uq_chat_channels_name"),
    )
    op.create_index("ix_chat_channels_kind", "chat_channels", ["kind", "name"])
    op.create_table(
        "chat_members",
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("last_read", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["chat_channels.id"], ondelete="CASCADE",
                                name="fk_chat_members_channel_id_chat_channels"),
        sa.PrimaryKeyConstraint("channel_id", "login", name="pk_chat_members"),
    )
    op.create_index("ix_chat_members_login", "chat_members", ["login", "channel_id"])
    op.create_table(
        "chat_messages",
        sa.Column("ord", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("thread", sa.String(64), nullable=True),
        sa.Column("has_file", sa.Boolean(), nullable=False),
        sa.Column("task_assignee", sa.String(128), nullable=True),
        sa.Column("task_status", sa.String(16), nullable=True),
        sa.Column("task_due", sa.Float(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["chat_channels.id"],
                                name="fk_chat_messages_channel_id_chat_channels"),
        sa.PrimaryKeyConstraint("ord", name="pk_chat_messages"),
        sa.UniqueConstraint("id", name="uq_chat_messages_id"),
        sa.UniqueConstraint("author", "client_id", name="uq_chat_messages_author_client"),
    )
    op.create_index("ix_chat_messages_channel", "chat_messages", ["channel_id", "ord"])
    op.create_index("ix_chat_messages_seq", "chat_messages", ["seq"])
    op.create_index("ix_chat_messages_thread", "chat_messages", ["thread", "ord"])
    op.create_index("ix_chat_messages_assignee", "chat_messages", ["task_assignee", "task_status"])
    op.create_index("ix_chat_messages_due", "chat_messages", ["task_due"])
    op.create_table(
        "chat_search_terms",
        sa.Column("term", sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql"), nullable=False),
        sa.Column("ord", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("term", "ord", name="pk_chat_search_terms"),
    )
    op.create_table(
        "chat_files",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("mime", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploader", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("attached_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_chat_files"),
    )
    op.create_index("ix_chat_files_sha256", "chat_files", ["sha256"])
    op.create_index("ix_chat_files_uploader", "chat_files", ["uploader", "created_at"])
    op.create_index("ix_chat_files_unattached", "chat_files", ["attached_at", "created_at"])
    op.create_table(
        "chat_file_refs",
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["chat_files.id"], ondelete="CASCADE",
                                name="fk_chat_file_refs_file_id_chat_files"),
        sa.PrimaryKeyConstraint("file_id", "message_id", name="pk_chat_file_refs"),
    )
    op.create_index("ix_chat_file_refs_channel", "chat_file_refs", ["file_id", "channel_id"])


def downgrade() -> None:
    for table in ("chat_file_refs", "chat_files", "chat_search_terms", "chat_messages", "chat_members",
                  "chat_channels", "chat_users", "chat_settings", "counters"):
        op.drop_table(table)
