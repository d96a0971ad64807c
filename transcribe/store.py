"""Transcripts and the notes' state in the store (`transcripts`, `meeting_notes`), keyed by room and meeting.

A transcript is kept as the Transcript's JSON (attendance and final captions); the formats people download and
the notes are rendered from it on request (transcribe/formats.py, transcribe/notes.py). The async methods are for
code on the event loop; `save`, `load` and `meetings` keep the blocking interface for callers on threads (the
room transcriber saves from one): they run on the loop the store was opened on and wait for it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from store.database import Database
from store.schema import meeting_notes, transcripts
from transcribe.transcript import Transcript

T = TypeVar("T")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _safe(room: str, meeting_id: str | None = None) -> bool:
    return bool(_SAFE.match(room)) and (meeting_id is None or bool(_SAFE.match(meeting_id)))


class TranscriptStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- async (on the loop) ----------------------------------------------------------------------------------

    async def asave(self, transcript: Transcript) -> None:
        """Stores (or replaces) the meeting's transcript."""
        if not _safe(transcript.room, transcript.meeting_id):
            raise ValueError(f"unsafe room or meeting id: {transcript.room!r} {transcript.meeting_id!r}")
        values = {"started_at": transcript.started_at, "saved_at": time.time(),
                  "body": json.dumps(transcript.to_dict(), ensure_ascii=False)}
        key = (transcripts.c.room == transcript.room, transcripts.c.meeting_id == transcript.meeting_id)

        async def op(conn: AsyncConnection) -> None:
            # One transcriber per meeting writes it: update, else insert, is the same on both backends.
            if not (await conn.execute(update(transcripts).where(*key).values(**values))).rowcount:
                await conn.execute(transcripts.insert().values(room=transcript.room,
                                                               meeting_id=transcript.meeting_id, **values))
        await self.db.write(op)

    async def ameetings(self, room: str) -> list[str]:
        """The room's meetings with a transcript, oldest first."""
        if not _safe(room):
            return []
        async with self.db.read() as conn:
            rows = await conn.execute(select(transcripts.c.meeting_id).where(transcripts.c.room == room)
                                      .order_by(transcripts.c.started_at, transcripts.c.meeting_id))
            return [r[0] for r in rows]

    async def aload(self, room: str, meeting_id: str | None = None) -> Transcript | None:
        """The given meeting's transcript, or the room's latest one."""
        if not _safe(room, meeting_id):
            return None
        stmt = select(transcripts.c.body).where(transcripts.c.room == room)
        if meeting_id is not None:
            stmt = stmt.where(transcripts.c.meeting_id == meeting_id)
        stmt = stmt.order_by(transcripts.c.started_at.desc(), transcripts.c.meeting_id.desc()).limit(1)
        row = await self.db.first(stmt)
        return Transcript.from_dict(json.loads(row[0])) if row is not None else None

    async def load_state(self, room: str, meeting_id: str) -> dict[str, Any] | None:
        """The notes' state of a meeting (the organizer's edit, publishing), None if nobody touched them."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(meeting_notes.c.body).where(
                meeting_notes.c.room == room, meeting_notes.c.meeting_id == meeting_id))).first()
        loaded: dict[str, Any] | None = json.loads(row[0]) if row is not None else None
        return loaded

    async def save_state(self, room: str, meeting_id: str, state: dict[str, Any]) -> None:
        values = {"updated_at": time.time(), "body": json.dumps(state, ensure_ascii=False)}
        key = (meeting_notes.c.room == room, meeting_notes.c.meeting_id == meeting_id)

        async def op(conn: AsyncConnection) -> None:
            if not (await conn.execute(update(meeting_notes).where(*key).values(**values))).rowcount:
                await conn.execute(meeting_notes.insert().values(room=room, meeting_id=meeting_id, **values))
        await self.db.write(op)

    # -- blocking (on a thread) -------------------------------------------------------------------------------

    def _blocking(self, job: Coroutine[Any, Any, T]) -> T:
        loop = self.db.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            job.close()
            raise RuntimeError("on the event loop use the async methods (asave, aload, ameetings)")
        return asyncio.run_coroutine_threadsafe(job, loop).result()

    def save(self, transcript: Transcript, extra: dict[str, str] | None = None) -> str:
        """Stores the transcript; returns its meeting id. Rendered files (`extra`) are not kept: every format is
        rendered from the transcript when asked for."""
        self._blocking(self.asave(transcript))
        return transcript.meeting_id

    def meetings(self, room: str) -> list[str]:
        return self._blocking(self.ameetings(room))

    def load(self, room: str, meeting_id: str | None = None) -> Transcript | None:
        return self._blocking(self.aload(room, meeting_id))
