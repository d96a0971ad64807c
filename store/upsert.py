"""The one dialect difference inserts meet: INSERT … ON CONFLICT, which SQLAlchemy spells per dialect
(postgresql.insert / sqlite.insert). Every store user that needs it asks here instead of choosing itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from store.database import Database


def dialect_insert(db: Database, table: Table) -> Any:
    """The dialect's INSERT for `table`, which has on_conflict_do_nothing / on_conflict_do_update."""
    return postgresql.insert(table) if db.dialect == "postgresql" else sqlite.insert(table)


def insert_ignoring(db: Database, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: a row that is there already stays as it is."""
    return dialect_insert(db, table).on_conflict_do_nothing()


def insert_replacing(db: Database, table: Table, keys: list[str], columns: list[str]) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET columns = the new ones."""
    insert = dialect_insert(db, table)
    return insert.on_conflict_do_update(index_elements=keys, set_={c: insert.excluded[c] for c in columns})
