"""Room lifecycle without peers: empty rooms end, close cascades and is idempotent."""

from __future__ import annotations

from sfu.participant import Participant, Permissions
from sfu.rooms import RoomRegistry


async def test_empty_rooms_end_after_the_timeout_and_busy_ones_stay() -> None:
    rooms = RoomRegistry()
    ended_hooks: list[str] = []

    async def on_closing(room: object) -> None:
        ended_hooks.append(getattr(room, "name"))

    rooms.on_room_closing.append(on_closing)
    empty, _ = rooms.get_or_create("empty")
    busy, _ = rooms.get_or_create("busy")
    busy.join(Participant("alice", "Alice", Permissions()))
    assert await rooms.end_empty(60, now=empty.empty_since + 30) == []  # type: ignore[operator]
    assert await rooms.end_empty(60, now=empty.empty_since + 61) == ["empty"]  # type: ignore[operator]
    assert ended_hooks == ["empty"] and rooms.get("busy") is busy
    await rooms.close()
    assert busy.closed and ended_hooks == ["empty", "busy"]


async def test_close_is_idempotent_and_cascades() -> None:
    rooms = RoomRegistry()
    room, _ = rooms.get_or_create("r")
    alice = Participant("alice", "Alice", Permissions())
    room.join(alice)
    room.close()
    room.close()
    assert alice.closed and room.participants == {}
