"""The server's caption service: settings, the lazily loaded engine, the store and the live rooms."""

from __future__ import annotations

import asyncio
import logging

from transcribe.engine import AsrEngine
from transcribe.room import Emit, RoomTranscriber
from transcribe.settings import AsrSettings
from transcribe.store import TranscriptStore
from transcribe.transcript import Transcript


class TranscribeService:
    def __init__(self, settings: AsrSettings, store: TranscriptStore) -> None:
        self.settings = settings
        self.store = store
        self._engine: AsrEngine | None = None
        self._rooms: dict[str, RoomTranscriber] = {}
        self._warmup: asyncio.Task[None] | None = None
        self._log = logging.getLogger(f"convene.transcribe.service.{id(self):x}")

    @property
    def engine(self) -> AsrEngine:
        """Created on first use; the model itself loads in a thread (see `warm_up`)."""
        if self._engine is None:
            self._engine = AsrEngine(self.settings)
        return self._engine

    def warm_up(self) -> None:
        """Starts loading the model off the loop, once."""
        if self._warmup is None:
            self._warmup = asyncio.get_running_loop().create_task(self.engine.ensure_loaded())
            self._warmup.add_done_callback(self._warmed)

    def _warmed(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.error("loading the speech model failed: %s", task.exception())
            self._warmup = None

    def open_room(self, room_name: str, emit: Emit, enabled: bool = True,
                  meeting_id: str | None = None, language: str | None = None) -> RoomTranscriber:
        """The room's transcriber (one per live meeting); loading the model starts in the background.
        `language` None: the server's default (`--asr-language`)."""
        room = self._rooms.get(room_name)
        if room is None:
            room = RoomTranscriber(room_name, self.engine, emit, self.store, enabled=enabled, meeting_id=meeting_id,
                                   language=language)
            self._rooms[room_name] = room
            if enabled:
                self.warm_up()
        return room

    def live_rooms(self) -> list[str]:
        return sorted(self._rooms)

    def live(self, room_name: str) -> RoomTranscriber | None:
        return self._rooms.get(room_name)

    async def close_room(self, room_name: str) -> str | None:
        """Ends the meeting's transcript: finalises, stores transcript and notes."""
        room = self._rooms.pop(room_name, None)
        return await room.close() if room is not None else None

    async def transcript(self, room_name: str, meeting_id: str | None = None) -> Transcript | None:
        """The live meeting's transcript, else the stored one (latest, or `meeting_id`)."""
        live = self._rooms.get(room_name)
        if live is not None and (meeting_id is None or meeting_id == live.transcript.meeting_id):
            return Transcript.from_dict(live.transcript.to_dict())
        return await self.store.aload(room_name, meeting_id)

    async def close(self) -> None:
        for name in list(self._rooms):
            try:
                await self.close_room(name)
            except Exception:
                self._log.exception("closing captions of %s failed", name)
        if self._warmup is not None and not self._warmup.done():
            self._warmup.cancel()
        if self._engine is not None:
            self._engine.shutdown()
