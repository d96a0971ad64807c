"""Search: an (ord, term) index on the search terms, so a message's terms are checked by one index probe.

Search walks the newest messages first and checks each against the query's words (a common English
prefix then stops after a few thousand messages instead of sorting its whole posting range).

Revision ID: 0003_search
Revises: 0002_core
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003_search"
down_revision = "0002_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_chat_search_terms_ord", "chat_search_terms", ["ord", "term"])


def downgrade() -> None:
    op.drop_index("ix_chat_search_terms_ord", table_name="chat_search_terms")
