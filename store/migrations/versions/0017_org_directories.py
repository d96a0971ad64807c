"""Per-organisation directory connections (#10): an organisation's own LDAP/AD directory and OIDC provider;
OIDC identities bound per (organisation, issuer, subject).

Revision ID: 0017_org_directories
Revises: 0016_organisations
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_org_directories"
down_revision = "0016_organisations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_directories",
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "kind", name="pk_org_directories"),
    )
    _rekey_oidc_identities(("org_id", "issuer", "subject"), ("org_id", "issuer", "login"))


def downgrade() -> None:
    _rekey_oidc_identities(("issuer", "subject"), ("issuer", "login"))
    op.drop_table("org_directories")


def _rekey_oidc_identities(primary: tuple[str, ...], unique: tuple[str, ...]) -> None:
    """SQLite rebuilds the table (batch mode) with the new keys; PostgreSQL drops and re-adds the constraints."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("oidc_identities") as batch:
        if not sqlite:
            batch.drop_constraint("pk_oidc_identities", type_="primary")
        batch.drop_constraint("uq_oidc_identities_login", type_="unique")
        batch.create_primary_key("pk_oidc_identities", list(primary))
        batch.create_unique_constraint("uq_oidc_identities_login", list(unique))
