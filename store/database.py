"""One database per process: the engine, migrations on open, reads on a pool, writes in groups.

One-statement reads (`first`, `all`) of an SQLite file run whole on reader threads, with a blocking engine on
the same file (WAL: they see every committed write); other reads, and PostgreSQL's, use the async engine.

Writes go through one task that commits in groups: whatever is queued while a commit runs goes into
the next transaction, each write in its own SAVEPOINT (one refused write changes nothing). A write's
future resolves only after its transaction committed. When PostgreSQL aborts a group for a deadlock or a
serialization failure with another process's group (the same rows taken in other orders), the group is
rolled back whole and runs again a moment later (up to five times). On SQLite this is the only way to
write fast (one writer at a time, an fsync per commit); on PostgreSQL it saves a commit per write, and several
processes still write at once (each its own group).

The stores of one process share one Database (chat, API keys, the meeting ledger, the workers' directory,
transcripts): `open` and `close` are counted, the first open migrates, the last close disposes the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Engine, Result, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable

from store.engine import READER_THREADS, WRITE, create_engine, create_reader, database_url
from store.migrate import upgrade

T = TypeVar("T")
WriteOp = Callable[[AsyncConnection], Awaitable[T]]
log = logging.getLogger(__name__)

_GROUP = 256  # writes per transaction at most
_RETRIES = 5
_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None
        self._opened = 0
        self._queue: asyncio.Queue[tuple[WriteOp[Any], asyncio.Future[Any]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # The loop it was opened on: its connections belong to it (blocking callers on threads hand work to it).
        self.loop: asyncio.AbstractEventLoop | None = None
        # Told ("read" | "write", seconds) after each read (connection held) and write (queued until committed):
        # the Prometheus histogram of database time (signaling/prometheus.py). Two clock reads when set.
        self.timer: Callable[[str, float], None] | None = None
        # An SQLite file's one-statement reads (`first`, `all`): a blocking engine on threads of their own.
        self._reader: Engine | None = None
        self._reader_threads: ThreadPoolExecutor | None = None

    @classmethod
    def for_config(cls, configured_url: str | None, data_dir: Path) -> Database:
        return cls(database_url(configured_url, data_dir))

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "database not open"
        return self._engine

    @property
    def open_count(self) -> int:
        """How many users hold it open (the engine lives while this is above 0)."""
        return self._opened

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def open(self, migrate: bool = True) -> None:
        self._opened += 1
        if self._opened > 1:
            return
        self._engine = create_engine(self.url)
        self.loop = asyncio.get_running_loop()
        if migrate:
            before, after = await upgrade(self._engine)
            if before != after:
                log.info("database migrated from %s to %s", before, after)
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")
        self._reader = create_reader(self.url)
        if self._reader is not None:
            self._reader_threads = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="store-reader")

    async def close(self) -> None:
        self._opened -= 1
        if self._opened > 0:
            return
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        if self._reader is not None and self._reader_threads is not None:
            await asyncio.get_running_loop().run_in_executor(self._reader_threads, self._reader.dispose)
            self._reader_threads.shutdown()
            self._reader = self._reader_threads = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection of the async engine, for reads of several statements (one statement: `first`, `all`)."""
        timer, started = self.timer, time.perf_counter()
        try:
            async with self.engine.connect() as conn:
                yield conn
        finally:
            if timer is not None:
                timer("read", time.perf_counter() - started)

    async def first(self, statement: Executable) -> Row[Any] | None:
        """The first row of one read statement, or None."""
        return await self._fetch(statement, _first)

    async def all(self, statement: Executable) -> list[Row[Any]]:
        """Every row of one read statement."""
        return await self._fetch(statement, _all)

    async def _fetch(self, statement: Executable, take: Callable[[Result[Any]], T]) -> T:
        reader, threads = self._reader, self._reader_threads
        if reader is None or threads is None:
            async with self.read() as conn:
                return take(await conn.execute(statement))
        timer, started = self.timer, time.perf_counter()
        try:
            # aiosqlite hands each step of a read (cursor, execute, fetch, close) to its thread and back, a wake-up
            # of the event loop each: ~0.55 ms of CPU per read here, against ~0.2 ms for one hand-over (#14).
            return await asyncio.get_running_loop().run_in_executor(threads, _read, reader, statement, take)
        finally:
            if timer is not None:
                timer("read", time.perf_counter() - started)

    async def write(self, op: WriteOp[T]) -> T:
        """Runs `op` in the next group's transaction; its exception (if any) is raised here."""
        assert self._writer is not None, "database not open"
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        timer, started = self.timer, time.perf_counter()
        await self._queue.put((op, fut))
        try:
            return await fut
        finally:
            if timer is not None:
                timer("write", time.perf_counter() - started)

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < _GROUP and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            await self._commit(batch)

    @staticmethod
    async def _run_one(conn: AsyncConnection, op: WriteOp[Any], fut: asyncio.Future[Any], alone: bool,
                       ) -> tuple[asyncio.Future[Any], Any, BaseException | None]:
        """One write in its savepoint; a deadlock or serialization failure aborts the whole group (_Conflict).
        A write alone in its group needs no savepoint (two statements fewer; a join writes one): its failure
        rolls back the whole transaction (_Alone)."""
        if alone:
            try:
                return fut, await op(conn), None
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if _retryable(exc):
                    raise _Conflict(exc) from exc
                raise _Alone(exc) from exc
        savepoint = await conn.begin_nested()
        try:
            value = await op(conn)
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            await savepoint.rollback()
            if _retryable(exc):
                raise _Conflict(exc) from exc
            return fut, None, exc
        await savepoint.commit()
        return fut, value, None

    async def _commit(self, batch: list[tuple[WriteOp[Any], asyncio.Future[Any]]]) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for attempt in range(_RETRIES):
            results = []
            try:
                async with self.engine.connect() as conn:
                    await conn.execution_options(**{WRITE: True})
                    async with conn.begin():
                        for op, fut in batch:
                            results.append(await self._run_one(conn, op, fut, alone=len(batch) == 1))
            except _Alone as failed:  # rolled back: nothing of it is stored
                results = [(batch[0][1], None, failed.error)]
            except _Conflict as conflict:
                # PostgreSQL aborted this group for another process's, which took the same rows in another order
                # (two rooms' live meetings, say). Rolled back whole, so it runs again whole, a little later.
                if attempt < _RETRIES - 1:
                    log.info("a write group of %d met %r; running it again", len(batch), conflict.error)
                    await asyncio.sleep(random.uniform(0.005, 0.03) * (attempt + 1))
                    continue
                log.warning("a write group of %d failed: %r", len(batch), conflict.error)
                results = [(fut, None, conflict.error) for _, fut in batch]
            except Exception as exc:  # noqa: BLE001 - the whole group failed: nothing of it is stored
                log.warning("a write group of %d failed: %r", len(batch), exc)
                results = [(fut, None, exc) for _, fut in batch]
            break
        for fut, value, error in results:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)


def _first(result: Result[Any]) -> Row[Any] | None:
    return result.first()


def _all(result: Result[Any]) -> list[Row[Any]]:
    return list(result.all())


def _read(engine: Engine, statement: Executable, take: Callable[[Result[Any]], T]) -> T:
    """On a reader thread: one statement, its connection given back before the rows are."""
    with engine.connect() as conn:
        return take(conn.execute(statement))


def _retryable(exc: Exception) -> bool:
    """A deadlock or serialization failure (PostgreSQL's SQLSTATE): the group may succeed when run again."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRYABLE


class _GroupFailure(Exception):
    """Carries a write's `error` out of its group's transaction, which rolls back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Conflict(_GroupFailure):
    """A retryable failure: the whole group runs again."""


class _Alone(_GroupFailure):
    """The failure of a write alone in its group (not retried)."""
