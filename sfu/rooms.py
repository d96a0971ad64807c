"""The RoomRegistry: rooms by name, created on demand, and the hooks that attach sidecars to new rooms."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sfu.room import Room

log = logging.getLogger("convene.sfu.rooms")

# A room closed because its process stops has not ended as a meeting: it resumes when the server is back.
SHUTDOWN_REASON = "server shutting down"

RoomHook = Callable[[Room], None]
RoomCloseHook = Callable[[Room], Awaitable[None]]
RoomEndedHook = Callable[[Room, str], None]


class TooManyRooms(Exception):
    pass


class RoomRegistry:
    def __init__(self, ice_servers: list[str] | None = None, pli_throttle: float = 0.5,
                 loudest_audio: int = 3, captions_default: bool = True, max_rooms: int = 1000) -> None:
        self.captions_default = captions_default
        self.max_rooms = max_rooms
        self.ice_servers = list(ice_servers or [])
        self.pli_throttle = pli_throttle
        self.loudest_audio = loudest_audio
        self._rooms: dict[str, Room] = {}
        # Sidecars (captions, chat) attach here: called for every new room and before one closes.
        self.on_room_created: list[RoomHook] = []
        self.on_room_closing: list[RoomCloseHook] = []
        # Called once a room has closed, with the reason (the meeting ledger records the end).
        self.on_room_ended: list[RoomEndedHook] = []
        self._started = False
        self._reaper: asyncio.Task[None] | None = None

    def start(self, empty_timeout: float = 300.0, check_every: float = 10.0) -> None:
        """Starts ending rooms that stayed empty for `empty_timeout` seconds (as LiveKit does)."""
        self._started = True
        self._reaper = asyncio.get_running_loop().create_task(self._reap(empty_timeout, check_every))

    async def _reap(self, empty_timeout: float, check_every: float) -> None:
        while True:
            await asyncio.sleep(check_every)
            await self.end_empty(empty_timeout)

    async def end_empty(self, empty_timeout: float, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        ended = []
        for room in list(self._rooms.values()):
            if room.visible:
                room.empty_since = None
            elif room.empty_since is None:
                room.empty_since = now
            elif now - room.empty_since >= empty_timeout:
                await self.end(room.name, reason="empty")
                ended.append(room.name)
        return ended

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def all(self) -> list[Room]:
        return list(self._rooms.values())

    def get_or_create(self, name: str, captions: bool | None = None, max_participants: int = 100,
                      meeting_id: str = "") -> tuple[Room, bool]:
        """The live room of this name, or a new one serving `meeting_id`. A live room always answers, whatever
        meeting it serves: callers that hold a meeting id compare it with `room.meeting_id`."""
        room = self._rooms.get(name)
        if room is not None:
            return room, False
        if len(self._rooms) >= self.max_rooms:
            raise TooManyRooms(f"this server holds at most {self.max_rooms} rooms at once")
        room = Room(name, captions=self.captions_default if captions is None else captions,
                    max_participants=max_participants, loudest_audio=self.loudest_audio, meeting_id=meeting_id)
        self._rooms[name] = room
        for hook in self.on_room_created:
            try:
                hook(room)
            except Exception:
                log.exception("room hook failed for %s", name)
        return room, True

    async def end(self, name: str, reason: str = "room ended") -> bool:
        room = self._rooms.pop(name, None)
        if room is None:
            return False
        for hook in self.on_room_closing:
            try:
                await hook(room)
            except Exception:
                log.exception("room close hook failed for %s", name)
        room.close(reason)
        for ended in self.on_room_ended:
            try:
                ended(room, reason)
            except Exception:
                log.exception("room ended hook failed for %s", name)
        return True

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for name in list(self._rooms):
            await self.end(name, reason=SHUTDOWN_REASON)
