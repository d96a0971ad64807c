"""Per-organisation directory connections (#10): an organisation's own LDAP/AD directory and OIDC provider;
OIDC identities bound per (organisation, issuer, subject).

Revision ID: 0017_org_directories
Revises: 0016_organisations
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging

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
    _drop_bindings_the_old_keys_cannot_hold()
    _rekey_oidc_identities(("issuer", "subject"), ("issuer", "login"))
    op.drop_table("org_directories")


def _rekey_oidc_identities(primary: tuple[str, ...], unique: tuple[str, ...]) -> None:
    """PostgreSQL drops and re-adds the constraints; SQLite (which cannot alter a primary key) copies the rows into
    a new table with the new keys and puts it in the old one's place."""
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("pk_oidc_identities", "oidc_identities", type_="primary")
        op.drop_constraint("uq_oidc_identities_login", "oidc_identities", type_="unique")
        op.create_primary_key("pk_oidc_identities", "oidc_identities", list(primary))
        op.create_unique_constraint("uq_oidc_identities_login", "oidc_identities", list(unique))
        return
    columns = "issuer, subject, org_id, login, created_at, last_sign_in"
    op.create_table(
        "_oidc_identities_new",
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_sign_in", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*primary, name="pk_oidc_identities"),
        sa.UniqueConstraint(*unique, name="uq_oidc_identities_login"),
    )
    op.execute(f"INSERT INTO _oidc_identities_new ({columns}) SELECT {columns} FROM oidc_identities")
    op.drop_table("oidc_identities")
    op.rename_table("_oidc_identities_new", "oidc_identities")


# Under the old keys one (issuer, subject) and one (issuer, login) bind once across all organisations. A binding
# that shares either with another is dropped, unless it is the default organisation's (which is kept); between
# two other organisations' the older one stays (the organisation id breaks a tie). The person whose binding went
# signs in again after an administrator links them.
_CLASHING = """
DELETE FROM oidc_identities
WHERE org_id <> 'default' AND EXISTS (
    SELECT 1 FROM oidc_identities AS other
    WHERE other.issuer = oidc_identities.issuer
      AND (other.subject = oidc_identities.subject OR other.login = oidc_identities.login)
      AND NOT (other.org_id = oidc_identities.org_id AND other.subject = oidc_identities.subject)
      AND (other.org_id = 'default' OR other.created_at < oidc_identities.created_at
           OR (other.created_at = oidc_identities.created_at AND other.org_id < oidc_identities.org_id)))
"""


def _drop_bindings_the_old_keys_cannot_hold() -> None:
    dropped = op.get_bind().execute(sa.text(_CLASHING)).rowcount
    if dropped:
        logging.getLogger("alembic.runtime.migration").warning(
            f"0017 downgrade: {dropped} single sign-on binding(s) of non-default organisations clashed with "
            "another's (issuer, subject) or (issuer, login) and were dropped; the default organisation's are kept")
