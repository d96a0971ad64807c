"""The audit log: an append-only, hash-chained table of governance events (audit/).

Revision ID: 0006_audit_log
Revises: 0005_ended_sessions
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_log"
down_revision = "0005_ended_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("org_id", sa.String(64), nullable=False, server_default="default"),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_event_type", "audit_log", ["event_type", "seq"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "seq"])
    # The chain's counter: appends bump it (its row lock orders appenders); verify compares it to the last row.
    op.bulk_insert(sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger)),
                   [{"name": "audit_seq", "value": 0}])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM counters WHERE name = 'audit_seq'"))
    op.drop_table("audit_log")
