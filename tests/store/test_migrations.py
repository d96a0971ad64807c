"""The store's migrations: `convene db upgrade|current` on SQLite and a real PostgreSQL, the migrated
schema equals store/schema.py (a table added to one without the other fails here), processes that
start together migrate once, and the SQLite file is private."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.database import Database
from store.engine import create_engine, database_url
from store.migrate import head, upgrade
from store.schema import metadata
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def db_cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "signaling.cli", "db", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.strip()


@pytest.fixture(params=["sqlite", "postgres"])
def configured_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None


def test_db_upgrade_and_current(tmp_path: Path, configured_url: str | None) -> None:
    where = ["--data-dir", str(tmp_path / "data"), *(["--database-url", configured_url] if configured_url else [])]
    assert db_cli("current", *where) == f"(empty) (head is {head()})"
    assert db_cli("upgrade", *where) == f"(empty) -> {head()}"
    assert db_cli("upgrade", *where) == f"{head()} (up to date)"
    assert db_cli("current", *where) == f"{head()} (head)"
    if configured_url is None:
        db_file = tmp_path / "data" / "convene.db"
        assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(db_file.parent.stat().st_mode) == 0o700


def _diff(connection: object) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))  # type: ignore[arg-type]


async def test_migrated_schema_is_the_declared_one(tmp_path: Path, configured_url: str | None) -> None:
    engine = create_engine(database_url(configured_url, tmp_path))
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_processes_starting_together_migrate_once(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.create_database()
    engines = [create_engine(database_url(url, tmp_path)) for _ in range(4)]
    try:
        results = await asyncio.gather(*(upgrade(e) for e in engines))
        assert results.count((None, head())) == 1 and results.count((head(), head())) == 3
    finally:
        for e in engines:
            await e.dispose()


def test_bad_database_url_is_refused(tmp_path: Path) -> None:
    from common.errors import InvalidConfig

    with pytest.raises(InvalidConfig):
        Database.for_config("mysql://root@localhost/x", tmp_path)
