"""The analytics rows a burst of joins notes are gathered into one write a second later (stats/pending.py), not a
transaction per join; a rejoin writes nothing again, and what waits when the server stops is written then."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from identity.meetings import MeetingLedger
from stats.activity import ActivityRecorder
from stats.attendance import AttendanceRecorder
from stats.pending import FLUSH_SECONDS
from store.database import Database
from store.schema import meeting_participants, user_activity


async def test_a_burst_of_joins_is_one_write_and_what_waits_is_written_at_close(tmp_path: Path) -> None:
    db = Database.for_config(None, tmp_path)
    await db.open()
    writes: list[str] = []
    try:
        meeting, _ = await MeetingLedger(db).live_or_start("weekly", guests=False)
        activity = ActivityRecorder(db)
        attendance = AttendanceRecorder(db, activity)
        db.timer = lambda kind, seconds: writes.append(kind) if kind == "write" else None
        for i in range(50):
            attendance.joined(meeting.meeting_id, f"p{i}")
        attendance.joined(meeting.meeting_id, "p0")  # a reconnect: already noted
        assert not writes  # off the joins' path
        await asyncio.sleep(FLUSH_SECONDS + 0.5)
        assert writes == ["write", "write"]  # one for the fifty attendances, one for the fifty active people
        people = {row.identity for row in await db.all(select(meeting_participants.c.identity))}
        assert people == {f"p{i}" for i in range(50)}
        assert len(await db.all(select(user_activity.c.login))) == 50

        attendance.joined(meeting.meeting_id, "late")
        await attendance.close()
        await activity.close()
        await attendance.close()  # twice is harmless
        assert writes == ["write"] * 4
        assert "late" in {row.identity for row in await db.all(select(meeting_participants.c.identity))}
    finally:
        await db.close()
