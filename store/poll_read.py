"""A read for polls: one Core statement, compiled once for the engine, run in one round trip to the driver.

A read through `Database.read` costs about five hops to aiosqlite's thread (cursor, execute, fetch, cursor close,
the rollback when the connection goes back), each a thread wake-up and a wake-up of the event loop: about
1.5 ms of CPU on an idle server. That is nothing for a request and most of an idle server's CPU for a poll that
runs twice a second (issue #14). This runs the same statement (the SQL is SQLAlchemy's, per dialect: one code
path for SQLite and PostgreSQL) on the pooled driver connection with one call: aiosqlite's `execute_fetchall`
(one hop) or asyncpg's `fetch` (one round trip, no transaction).

Only for small polls: parameters must be plain values the driver takes as they are (numbers, strings), and the
rows come back as the driver's (tuples, asyncpg Records), without SQLAlchemy's result processing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.util import greenlet_spawn

from store.database import Database


class PollRead:
    def __init__(self, db: Database, statement: Select[Any]) -> None:
        self.db = db
        self.statement = statement
        self._compiled: tuple[str, list[str]] | None = None  # (SQL, parameter names in order) for db's engine

    def _sql(self) -> tuple[str, list[str]]:
        if self._compiled is None:
            compiled = self.statement.compile(dialect=self.db.engine.dialect)
            self._compiled = str(compiled), list(compiled.positiontup or [])
        return self._compiled

    async def rows(self, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        sql, names = self._sql()
        values = [params[name] for name in names]
        timer, started = self.db.timer, time.perf_counter()  # a read like any other in the database-time histogram
        # The pool's own connection, returned without a reset on SQLite (readers hold no transaction) and with a
        # no-op one on PostgreSQL (asyncpg's fetch outside a transaction opens none).
        pooled = await self.db.engine.raw_connection()
        try:
            driver: Any = pooled.driver_connection
            if self.db.dialect == "sqlite":
                return list(await driver.execute_fetchall(sql, values))
            return list(await driver.fetch(sql, *values))
        finally:
            await greenlet_spawn(pooled.close)  # where the pool may await (a reset, a connection it drops)
            if timer is not None:
                timer("read", time.perf_counter() - started)
