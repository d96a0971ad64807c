"""Alembic driven from code: `upgrade` (on start and `convene db upgrade`) and `current`.

Both run on the async engine: Alembic is synchronous, so it gets the sync face of one async connection
(`run_sync`). The upgrade runs in one transaction under a lock, so several processes starting at once
migrate once: PostgreSQL takes an advisory lock, SQLite its write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.engine import WRITE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: any constant of ours, the same in every process.
_LOCK_KEY = 0x636F6E76  # "conv"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations must have one head, not {heads}"
    return str(heads[0])


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, target: str) -> tuple[str | None, str | None]:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    before = _current(connection)
    if before != head() or target != "head":
        command.upgrade(alembic_config(connection), target)
    return before, _current(connection)


async def upgrade(engine: AsyncEngine, target: str = "head") -> tuple[str | None, str | None]:
    """Migrates to `target`; returns the revision before and after."""
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE: True})
        async with conn.begin():
            return await conn.run_sync(_upgrade, target)


async def current(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade_database(configured_url: str | None, data_dir: Path) -> tuple[str | None, str | None]:
    """Opens the configured database (None: SQLite in the data dir), migrates it, closes it."""
    from store.engine import create_engine, database_url

    engine = create_engine(database_url(configured_url, data_dir))
    try:
        return await upgrade(engine)
    finally:
        await engine.dispose()
