"""OpenID Connect identities: which subject of which provider signs in as which login.

Revision ID: 0011_oidc_identities
Revises: 0010_scheduled_posts
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_oidc_identities"
down_revision = "0010_scheduled_posts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_identities",
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_sign_in", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "subject", name="pk_oidc_identities"),
        sa.UniqueConstraint("issuer", "login", name="uq_oidc_identities_login"),
    )


def downgrade() -> None:
    op.drop_table("oidc_identities")
