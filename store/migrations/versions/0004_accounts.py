"""Accounts: sign-in credentials per login (argon2id password hash, token epoch for revocation, active flag).

Revision ID: 0004_accounts
Revises: 0003_search
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_accounts"
down_revision = "0003_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("login", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("token_epoch", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("login", name="pk_accounts"),
    )


def downgrade() -> None:
    op.drop_table("accounts")
