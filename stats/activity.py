"""Who used chat or meetings today: a row of user_activity per (day, login), written once per process and day.

The per-request cost is a set lookup: a login already seen today in this process writes nothing. New logins are
gathered and written together a moment later, off the request's path (`PendingRows`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date

from stats.days import day_of, span
from stats.pending import PendingRows
from store.database import Database
from store.schema import user_activity

log = logging.getLogger("convene.stats.activity")


class ActivityRecorder:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._day = ""
        self._day_span = (0.0, 0.0)  # the current day's first instant and the next day's
        self._seen: set[str] = set()
        self._rows = PendingRows(db, user_activity, log)

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
        self._rows.add((day, org, login), {"day": day, "org_id": org, "login": login})

    async def flush(self) -> None:
        """Writes the activity noted so far (the rollup counts it at once)."""
        await self._rows.flush()

    async def close(self) -> None:
        await self._rows.close()
