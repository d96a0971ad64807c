"""Core tables beside chat: API keys, the meeting ledger and its removals, the media workers' room directory,
transcripts and the notes' state.

Revision ID: 0002_core
Revises: 0001_chat
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_core"
down_revision = "0001_chat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )
    op.create_table(
        "meetings",
        sa.Column("meeting_id", sa.String(64), nullable=False),
        sa.Column("room", sa.String(128), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("guests", sa.Boolean(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", name="pk_meetings"),
    )
    op.create_index("ix_meetings_room", "meetings", ["room", "started_at"])
    op.create_index("ix_meetings_started", "meetings", ["started_at"])
    op.create_index("uq_meetings_live_room", "meetings", ["room"], unique=True,
                    sqlite_where=sa.text("ended_at IS NULL"), postgresql_where=sa.text("ended_at IS NULL"))
    op.create_table(
        "meeting_removals",
        sa.Column("meeting_id", sa.String(64), nullable=False),
        sa.Column("identity", sa.String(128), nullable=False),
        sa.Column("removed_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.meeting_id"], ondelete="CASCADE",
                                name="fk_meeting_removals_meeting_id_meetings"),
        sa.PrimaryKeyConstraint("meeting_id", "identity", name="pk_meeting_removals"),
    )
    op.create_table(
        "sfu_workers",
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("http_url", sa.Text(), nullable=False),
        sa.Column("pipe_host", sa.Text(), nullable=False),
        sa.Column("pipe_port", sa.Integer(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name="pk_sfu_workers"),
    )
    op.create_table(
        "sfu_room_hosts",
        sa.Column("room", sa.String(128), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("room", "worker_id", name="pk_sfu_room_hosts"),
    )
    op.create_index("ix_sfu_room_hosts_worker", "sfu_room_hosts", ["worker_id"])
    op.create_table(
        "transcripts",
        sa.Column("room", sa.String(128), nullable=False),
        sa.Column("meeting_id", sa.String(64), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("saved_at", sa.Float(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("room", "meeting_id", name="pk_transcripts"),
    )
    op.create_index("ix_transcripts_room", "transcripts", ["room", "started_at"])
    op.create_table(
        "meeting_notes",
        sa.Column("room", sa.String(128), nullable=False),
        sa.Column("meeting_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("room", "meeting_id", name="pk_meeting_notes"),
    )


def downgrade() -> None:
    for table in ("meeting_notes", "transcripts", "sfu_room_hosts", "sfu_workers", "meeting_removals", "meetings", "api_keys"):
        op.drop_table(table)
