"""Rows gathered for one INSERT … ON CONFLICT DO NOTHING a moment later, off the caller's path.

The analytics rows that requests and joins note (who was active, who attended) are not read until the rollup, so
they need not cost a write each: a hundred people joining at 10/s write ten times, not a hundred (each write is a
transaction and several hand-offs to the database's thread; #14's joins). A row's key says when two are the same
row; the rows go out in the keys' order, so two processes writing the same rows take their locks in one order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from store.database import Database
from store.upsert import insert_ignoring

FLUSH_SECONDS = 1.0


class PendingRows:
    def __init__(self, db: Database, table: Table, log: logging.Logger, delay: float = FLUSH_SECONDS) -> None:
        self._db = db
        self._table = table
        self._log = log
        self._delay = delay
        self._pending: dict[tuple[str, ...], dict[str, Any]] = {}
        self._flush: asyncio.Task[None] | None = None

    def add(self, key: tuple[str, ...], row: dict[str, Any]) -> None:
        """Writes `row` within `delay` seconds, unless a row of the same key is already waiting."""
        self._pending.setdefault(key, row)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._delay)
        await self.flush()

    async def flush(self) -> None:
        """Writes what is waiting now; a failure is logged (analytics never fails the request that noted it)."""
        rows = [self._pending[key] for key in sorted(self._pending)]
        self._pending.clear()
        if not rows:
            return

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(insert_ignoring(self._db, self._table), rows)

        try:
            await self._db.write(op)
        except Exception:  # noqa: BLE001 - see above
            self._log.warning("could not write %d rows of %s", len(rows), self._table.name, exc_info=True)

    async def close(self) -> None:
        """Writes what is waiting (idempotent)."""
        if self._flush is not None and not self._flush.done():
            self._flush.cancel()
        await self.flush()
