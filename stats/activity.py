"""Who used chat or meetings today: a row of user_activity per (day, login), written once per process and day.

The per-request cost is a set lookup: a login already seen today in this process writes nothing. New logins are
gathered and written together (one INSERT … ON CONFLICT DO NOTHING) a moment later, off the request's path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import date

from sqlalchemy.ext.asyncio import AsyncConnection

from stats.days import day_of, span
from store.database import Database
from store.schema import user_activity
from store.upsert import insert_ignoring

log = logging.getLogger("convene.stats.activity")

FLUSH_SECONDS = 1.0


class ActivityRecorder:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._day = ""
        self._day_span = (0.0, 0.0)  # the current day's first instant and the next day's
        self._seen: set[str] = set()
        self._pending: set[tuple[str, str, str]] = set()  # (day, organisation, login)
        self._flush: asyncio.Task[None] | None = None

    def touch(self, login: str, org: str = "default") -> None:
        """`login` (of organisation `org`: logins are unique across organisations) was active now (an
        authenticated request of a person, a meeting join)."""
        now = self._clock()
        if not self._day_span[0] <= now < self._day_span[1]:  # a new day (a comparison, not a date, per call)
            self._day, self._seen = day_of(now), set()
            self._day_span = span(date.fromisoformat(self._day))
        day = self._day
        if login in self._seen:
            return
        self._seen.add(login)
        self._pending.add((day, org, login))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        rows = [{"day": d, "org_id": org, "login": login} for d, org, login in sorted(self._pending)]
        self._pending.clear()
        if not rows:
            return

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(insert_ignoring(self._db, user_activity), rows)

        try:
            await self._db.write(op)
        except Exception:  # noqa: BLE001 - analytics must never fail a request; the rollup counts posters anyway
            log.warning("could not record %d active users", len(rows), exc_info=True)

    async def close(self) -> None:
        if self._flush is not None and not self._flush.done():
            self._flush.cancel()
        await self.flush()
