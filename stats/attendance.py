"""Who joined which meeting: a meeting_participants row per (meeting, identity), first join only.

Each new pair is written a moment later, off the join's path, together with the others of that moment
(`PendingRows`): a hundred people joining at 10/s write ten times, not a hundred. The set keeps a reconnecting
participant from writing again in this process.
"""

from __future__ import annotations

import logging
import time

from stats.activity import ActivityRecorder
from stats.pending import PendingRows
from store.database import Database
from store.schema import meeting_participants

log = logging.getLogger("convene.stats.attendance")

_REMEMBER = 100_000  # pairs kept in memory before the set starts over (a second write is harmless)


class AttendanceRecorder:
    def __init__(self, db: Database, activity: ActivityRecorder) -> None:
        self._activity = activity
        self._seen: set[tuple[str, str]] = set()
        self._rows = PendingRows(db, meeting_participants, log)

    def joined(self, meeting_id: str, identity: str, org: str = "default") -> None:
        """`identity` joined the meeting (of organisation `org`)."""
        self._activity.touch(identity, org)
        if (meeting_id, identity) in self._seen:
            return
        if len(self._seen) > _REMEMBER:
            self._seen.clear()
        self._seen.add((meeting_id, identity))
        self._rows.add((meeting_id, identity), {"meeting_id": meeting_id, "identity": identity, "org_id": org,
                                                "joined_at": time.time()})

    async def flush(self) -> None:
        """Writes the attendances noted so far (the rollup counts them at once)."""
        await self._rows.flush()

    async def close(self) -> None:
        await self._rows.close()
