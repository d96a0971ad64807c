"""Directory users: chat_users gains the profile and provenance a directory (LDAP / AD) sync keeps: email, title,
source (local | ldap), the entry's external id, whether the directory lists it enabled, and updated_at.

Revision ID: 0009_directory_users
Revises: 0008_hooks
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_directory_users"
down_revision = "0008_hooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_users") as batch:
        batch.add_column(sa.Column("email", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("title", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="local"))
        batch.add_column(sa.Column("external_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("directory_active", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("chat_users") as batch:
        for name in ("updated_at", "directory_active", "external_id", "source", "title", "email"):
            batch.drop_column(name)
