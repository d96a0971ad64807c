"""Who joined which meeting: a meeting_participants row per (meeting, identity), first join only.

A join is rare next to chat requests, so each new pair is written at once, but off the join's path (a task);
the set keeps a reconnecting participant from writing again in this process.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncConnection

from stats.activity import ActivityRecorder
from store.database import Database
from store.schema import meeting_participants
from store.upsert import insert_ignoring

log = logging.getLogger("convene.stats.attendance")

_REMEMBER = 100_000  # pairs kept in memory before the set starts over (a second write is harmless)


class AttendanceRecorder:
    def __init__(self, db: Database, activity: ActivityRecorder) -> None:
        self._db = db
        self._activity = activity
        self._seen: set[tuple[str, str]] = set()
        self._writes: set[asyncio.Task[None]] = set()

    def joined(self, meeting_id: str, identity: str, org: str = "default") -> None:
        """`identity` joined the meeting (of organisation `org`)."""
        self._activity.touch(identity, org)
        if (meeting_id, identity) in self._seen:
            return
        if len(self._seen) > _REMEMBER:
            self._seen.clear()
        self._seen.add((meeting_id, identity))
        task = asyncio.get_running_loop().create_task(self._write(meeting_id, identity, org, time.time()))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, meeting_id: str, identity: str, org: str, at: float) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(insert_ignoring(self._db, meeting_participants).values(
                meeting_id=meeting_id, identity=identity, org_id=org, joined_at=at))

        try:
            await self._db.write(op)
        except Exception:  # noqa: BLE001 - analytics never fails a join
            log.warning("could not record a meeting participant", exc_info=True)

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
