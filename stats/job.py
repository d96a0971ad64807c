"""The daily rollup: yesterday's rows once the day is over, today's so far, refreshed every `interval` seconds
(an hour by default), and `backfill` for a range (convene stats backfill)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta, timezone

from stats.days import days
from stats.rollup import roll_up_day
from store.database import Database

log = logging.getLogger("convene.stats.job")


async def backfill(db: Database, first: date, last: date,
                   progress: Callable[[date, float], None] | None = None) -> int:
    """Rolls up first..last in order (a day's weekly and monthly counts read the days before it)."""
    count = 0
    for day in days(first, last):
        started = time.perf_counter()
        await roll_up_day(db, day)
        count += 1
        if progress is not None:
            progress(day, time.perf_counter() - started)
    return count


class RollupJob:
    def __init__(self, db: Database, interval: float = 3600.0, clock: Callable[[], float] = time.time,
                 before: Callable[[], Awaitable[None]] | None = None) -> None:
        self._db = db
        self._interval = interval
        self._clock = clock
        # Writes what this process noted but gathers for a moment (activity, attendance), so a round counts it.
        self._before = before
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def run_once(self) -> None:
        if self._before is not None:
            await self._before()
        today = datetime.fromtimestamp(self._clock(), tz=timezone.utc).date()
        await backfill(self._db, today - timedelta(days=1), today)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next round tries again
                log.warning("usage rollup failed", exc_info=True)
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
