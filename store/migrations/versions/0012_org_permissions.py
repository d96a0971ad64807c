"""Permissions (#10): an organisation's overrides of the permission table (identity/permissions.py).

Revision ID: 0012_org_permissions
Revises: 0011_oidc_identities
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_org_permissions"
down_revision = "0011_oidc_identities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_permissions",
        sa.Column("org_id", sa.String(64), server_default="default", nullable=False),
        sa.Column("permission", sa.String(64), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "permission", name="pk_org_permissions"),
    )


def downgrade() -> None:
    op.drop_table("org_permissions")
