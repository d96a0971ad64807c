"""Scheduled meetings (#10): scheduled_meetings and their invitees; the ledger records who started a meeting and,
for a scheduled one, its organiser (meetings.started_by, meetings.organizer), so they moderate it when they rejoin.

Revision ID: 0019_scheduled_meetings
Revises: 0018_access_state
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_scheduled_meetings"
down_revision = "0018_access_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_meetings",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("room", sa.String(128), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("organizer", sa.String(128), nullable=False),
        sa.Column("starts_at", sa.Float(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_scheduled_meetings"),
    )
    op.create_index("ix_scheduled_meetings_org_id", "scheduled_meetings", ["org_id", "starts_at"])
    op.create_index("ix_scheduled_meetings_room", "scheduled_meetings", ["room", "starts_at"])
    op.create_index("ix_scheduled_meetings_organizer", "scheduled_meetings", ["organizer", "starts_at"])
    op.create_table(
        "scheduled_meeting_invitees",
        sa.Column("scheduled_id", sa.String(64), nullable=False),
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.ForeignKeyConstraint(["scheduled_id"], ["scheduled_meetings.id"], ondelete="CASCADE",
                                name="fk_scheduled_meeting_invitees_scheduled_id_scheduled_meetings"),
        sa.PrimaryKeyConstraint("scheduled_id", "login", name="pk_scheduled_meeting_invitees"),
    )
    op.create_index("ix_scheduled_meeting_invitees_login", "scheduled_meeting_invitees", ["login"])
    # add_column only (no table rebuild): SQLite adds them in place, the live-room index untouched.
    op.add_column("meetings", sa.Column("started_by", sa.String(128), nullable=True))
    op.add_column("meetings", sa.Column("organizer", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meetings") as batch:
        batch.drop_column("organizer")
        batch.drop_column("started_by")
    op.drop_table("scheduled_meeting_invitees")
    op.drop_table("scheduled_meetings")
