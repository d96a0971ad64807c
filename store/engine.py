"""Engines from a database URL: embedded SQLite in the data dir, or PostgreSQL.

`None` means the embedded file `<data_dir>/convene.db`; `postgresql://…` (or `postgres://…`) is driven
by asyncpg, `sqlite:///path` by aiosqlite. SQLite connections get WAL (readers never block the writer),
synchronous=FULL (an acknowledged write survives power loss), foreign keys and a busy timeout (several
processes may share the file); the file is made 0600 before SQLite creates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.errors import InvalidConfig
from common.private_files import private_sqlite

DB_FILE = "convene.db"
BUSY_TIMEOUT_MS = 30_000
# Connection option: this transaction writes (SQLite takes the write lock at BEGIN, see _begin).
WRITE = "convene_write"
READER_THREADS = 2  # an SQLite file's one-statement reads (create_reader)


def database_url(database_url: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL for a configured URL (None: the embedded SQLite file in the data dir)."""
    if database_url is None:
        return f"sqlite+aiosqlite:///{data_dir / DB_FILE}"
    url = database_url.strip()
    for plain in ("postgresql://", "postgres://", "postgresql+asyncpg://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain):]
    for plain in ("sqlite:///", "sqlite+aiosqlite:///"):
        if url.startswith(plain):
            return "sqlite+aiosqlite:///" + url[len(plain):]
    raise InvalidConfig("database URL must start with postgresql:// or sqlite:///", field="database_url")


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN handling defers the write lock and cannot do savepoints well: we emit BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # A writer takes the lock up front: a deferred transaction that reads, then writes after another
    # process committed, fails at once with SQLITE_BUSY (the busy timeout cannot help it). Readers run
    # each statement on its own (autocommit): every statement costs a hop to aiosqlite's thread.
    if conn.get_execution_options().get(WRITE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_reader(url: str) -> Engine | None:
    """For an SQLite file, a blocking engine on the same file for `Database.first`/`Database.all`, which run a read
    whole on a thread of their own; None otherwise (PostgreSQL's reads stay on asyncpg, which needs no thread)."""
    path = sqlite_path(url)
    if path is None:
        return None
    # pysqlite lets a pooled connection move between the reader threads (check_same_thread is off for files).
    engine = create_sync_engine(f"sqlite:///{path}", pool_size=READER_THREADS, max_overflow=0,
                                pool_reset_on_return=None)
    event.listen(engine, "connect", _sqlite_connect)
    return engine


def create_engine(url: str) -> AsyncEngine:
    if make_url(url).get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            private_sqlite(path)  # 0600 before SQLite creates it, so its -wal/-shm are 0600 too
        # No reset on return: readers hold no transaction, the writer commits or rolls back itself.
        engine = create_async_engine(url, pool_size=5, max_overflow=5, pool_reset_on_return=None)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
