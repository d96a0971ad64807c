"""The one dialect difference the rollups meet: INSERT … ON CONFLICT DO NOTHING."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from store.database import Database


def insert_ignoring(db: Database, table: Table) -> Any:
    insert = postgresql.insert(table) if db.dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing()


def insert_replacing(db: Database, table: Table, keys: list[str], columns: list[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET columns = the new ones."""
    insert = postgresql.insert(table) if db.dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_update(index_elements=keys, set_={c: insert.excluded[c] for c in columns})
