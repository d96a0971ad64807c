"""Access that ends when it should (#10): failed sign-ins and the directory sync's status, shared by every
process of a deployment (they were each process's own).

Revision ID: 0018_access_state
Revises: 0017_org_directories
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_access_state"
down_revision = "0017_org_directories"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signin_failures",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_signin_failures"),
    )
    op.create_index("ix_signin_failures_window_start", "signin_failures", ["window_start"])
    op.create_table(
        "directory_status",
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("running_since", sa.Float(), nullable=True),
        sa.Column("last_run", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name="pk_directory_status"),
    )


def downgrade() -> None:
    op.drop_table("directory_status")
    op.drop_index("ix_signin_failures_window_start", table_name="signin_failures")
    op.drop_table("signin_failures")
