"""The RoomRegistry: rooms by name, created on demand, and the hooks that attach sidecars to new rooms."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sfu.room import Room

log = logging.getLogger("convene.sfu.rooms")

RoomHook = Callable[[Room], None]
RoomCloseHook = Callable[[Room], Awaitable[None]]


class RoomRegistry:
    def __init__(self, ice_servers: list[str] | None = None, pli_throttle: float = 0.5,
                 loudest_audio: int = 3) -> None:
        self.ice_servers = list(ice_servers or [])
        self.pli_throttle = pli_throttle
        self.loudest_audio = loudest_audio
        self._rooms: dict[str, Room] = {}
        # Sidecars (captions, chat) attach here: called for every new room and before one closes.
        self.on_room_created: list[RoomHook] = []
        self.on_room_closing: list[RoomCloseHook] = []
        self._started = False

    def start(self) -> None:
        self._started = True

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def all(self) -> list[Room]:
        return list(self._rooms.values())

    def get_or_create(self, name: str, captions: bool = True, max_participants: int = 100) -> tuple[Room, bool]:
        room = self._rooms.get(name)
        if room is not None:
            return room, False
        room = Room(name, captions=captions, max_participants=max_participants, loudest_audio=self.loudest_audio)
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
        return True

    async def close(self) -> None:
        for name in list(self._rooms):
            await self.end(name, reason="server shutting down")
