"""Alembic's environment: always handed a live connection by store.migrate (never run as a script).

store.migrate opens the async engine, takes the migration lock (a PostgreSQL advisory lock, or
SQLite's write lock via BEGIN IMMEDIATE) and runs this inside that one transaction, so processes that
start together migrate once.
"""

from __future__ import annotations

from alembic import context

from store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `convene db upgrade` (store.migrate), not alembic directly")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
