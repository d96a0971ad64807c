"""A Python client of the signaling protocol (docs/signaling.md), for bots and tests.

It keeps the socket, queues every server message, answers the server's subscriber offers through a
callback, and offers helpers to wait for a given message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

log = logging.getLogger("convene.signaling.client")

OfferHandler = Callable[[str, dict[str, Any]], Awaitable[str]]


class SignalingError(Exception):
    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(f"{message.get('code')}: {message.get('message')}")
        self.code = message.get("code")
        self.message = message


class SignalingClient:
    def __init__(self, base_url: str, room: str, token: str, on_offer: OfferHandler | None = None) -> None:
        self.url = base_url.replace("http", "ws", 1).rstrip("/") + f"/v1/rooms/{room}/ws"
        self.token = token
        self.on_offer = on_offer
        self.messages: list[dict[str, Any]] = []
        self.tracks_by_mid: dict[str, dict[str, Any]] = {}  # what each subscriber m-line carries now
        self.room_tracks: dict[str, dict[str, Any]] = {}  # track id -> track with its participant_id
        # Called with the new table when a `tracks` message moves slots (offers go to on_offer).
        self.on_table: Callable[[dict[str, dict[str, Any]]], None] | None = None
        self.joined: dict[str, Any] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    async def connect(self, subscriptions: dict[str, Any] | None = None) -> dict[str, Any]:
        self._session = aiohttp.ClientSession()
        # Offers per-message deflate as browsers do (the server declines it: see signaling/ws.py).
        self._ws = await self._session.ws_connect(self.url, heartbeat=None, compress=15)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        join: dict[str, Any] = {"type": "join", "token": self.token}
        if subscriptions is not None:
            join["subscriptions"] = subscriptions
        await self.send(join)
        joined = await self.wait_for("joined", error_ok=False)
        self.joined = joined
        return joined

    @property
    def compression(self) -> int:
        """The per-message deflate window bits the server accepted (0: none)."""
        assert self._ws is not None
        return self._ws.compress

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        assert self._ws is not None
        await self._ws.send_str(text)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(msg.data)
                self._follow_room(data)
                if data.get("type") == "tracks":
                    self.tracks_by_mid = data.get("tracks", {})
                    if self.on_table is not None:
                        self.on_table(self.tracks_by_mid)
                if data.get("type") == "offer" and data.get("target") == "subscriber":
                    self.tracks_by_mid = data.get("tracks", {})
                    if self.on_offer is not None:
                        answer = await self.on_offer(data["sdp"], self.tracks_by_mid)
                        try:
                            await self.send({"type": "answer", "target": "subscriber", "sdp": answer})
                        except ConnectionError:
                            # The server is closing: nobody needs the answer, but what it sent before closing
                            # (e.g. `removed`) is still to be read, and the close frame with its code ends the loop.
                            pass
                async with self._changed:
                    self.messages.append(data)
                    self._changed.notify_all()
        finally:
            self.close_code = self._ws.close_code
            self.closed.set()
            async with self._changed:
                self._changed.notify_all()

    def _follow_room(self, data: dict[str, Any]) -> None:
        """Keeps `room_tracks`: every track others publish, by id, whether we receive it now or not."""
        kind = data.get("type")
        if kind == "joined":
            for participant in data.get("room", {}).get("participants", []):
                for track in participant.get("tracks", []):
                    self.room_tracks[str(track["id"])] = {**track, "participant_id": participant["id"]}
        elif kind == "track_published":
            track = data.get("track", {})
            if self.joined is None or data.get("participant_id") != self.joined["participant"]["id"]:
                self.room_tracks[str(track.get("id"))] = {**track, "participant_id": data.get("participant_id")}
        elif kind == "track_unpublished":
            self.room_tracks.pop(str(data.get("track_id")), None)
        elif kind == "participant_left":
            gone = data.get("participant_id")
            for track_id in [t for t, info in self.room_tracks.items() if info["participant_id"] == gone]:
                del self.room_tracks[track_id]

    async def wait_for(self, kind: str, predicate: Callable[[dict[str, Any]], bool] | None = None,
                       timeout: float = 10.0, error_ok: bool = True, start: int = 0) -> dict[str, Any]:
        """Waits for a message of `kind` (matching `predicate`); an `error` raises unless error_ok."""
        async def find() -> dict[str, Any]:
            index = start
            async with self._changed:
                while True:
                    while index < len(self.messages):
                        message = self.messages[index]
                        index += 1
                        if message.get("type") == kind and (predicate is None or predicate(message)):
                            return message
                        if message.get("type") == "error" and not error_ok and kind != "error":
                            raise SignalingError(message)
                    if self.closed.is_set():
                        raise ConnectionError(f"socket closed ({self.close_code}) before {kind!r}")
                    await self._changed.wait()
        return await asyncio.wait_for(find(), timeout)

    def count(self, kind: str) -> int:
        return sum(1 for m in self.messages if m.get("type") == kind)

    async def request(self, message: dict[str, Any], reply: str, timeout: float = 10.0) -> dict[str, Any]:
        """Sends `message` and waits for the next `reply` after it; an `error` in between raises."""
        start = len(self.messages)
        await self.send(message)
        return await self.wait_for(reply, timeout=timeout, error_ok=False, start=start)

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=2)
        if self._session is not None:
            await self._session.close()
