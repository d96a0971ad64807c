"""Organisations (tenants, #10): the organisations and their Host names; org_id on the older tables.

Existing rows belong to the built-in organisation `default` (the columns' server default).

Revision ID: 0016_organisations
Revises: 0015_channel_watermark
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_organisations"
down_revision = "0015_channel_watermark"
branch_labels = None
depends_on = None

TABLES = ("chat_users", "chat_channels", "chat_files", "api_keys", "meetings")


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name="pk_organisations"),
    )
    op.create_table(
        "organisation_hosts",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisations.org_id"], ondelete="CASCADE",
                                name="fk_organisation_hosts_org_id_organisations"),
        sa.PrimaryKeyConstraint("host", name="pk_organisation_hosts"),
    )
    for table in TABLES:
        # add_column only (no table rebuild): SQLite adds it in place, child rows and their keys untouched.
        op.add_column(table, sa.Column("org_id", sa.String(64), nullable=False, server_default="default"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("org_id")
    op.drop_table("organisation_hosts")
    op.drop_table("organisations")
