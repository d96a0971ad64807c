"""The fan-out bus: every chat event goes here once and reaches every server process's hub.

LocalBus serves one process; RedisBus uses Redis pub/sub so several processes share events.
Subscribers get the event and its JSON text (encoded once, sent to every socket as is).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

log = logging.getLogger("convene.chat.bus")

Listener = Callable[[dict[str, Any], str], None]


class Bus(Protocol):
    def subscribe(self, listener: Listener) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, event: dict[str, Any]) -> None: ...


STOP_SECONDS = 5.0


class LocalBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._listeners.clear()

    async def publish(self, event: dict[str, Any]) -> None:
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        for listener in list(self._listeners):
            listener(event, text)


class RedisBus:
    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._listeners: list[Listener] = []
        self._redis: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(self._url, max_connections=16, timeout=30,
                                                        decode_responses=True)
        self._redis = aioredis.Redis(connection_pool=pool)
        self._task = asyncio.create_task(self._run(), name="chat-redis-bus")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _run(self) -> None:
        assert self._redis is not None
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._ready.set()
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        text = str(item["data"])
                        event = json.loads(text)
                        for listener in list(self._listeners):
                            listener(event, text)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("chat bus lost Redis; resubscribing")
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        """Bounded: a pubsub connection that does not close in time is abandoned, not waited for (one
        shutdown in a few hundred hung here for good)."""
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait([self._task], timeout=STOP_SECONDS)
            if not done:
                log.warning("chat bus: the subscriber did not stop in %.0f s; abandoned", STOP_SECONDS)
            self._task = None
        if self._redis is not None:
            try:
                await asyncio.wait_for(self._redis.aclose(), STOP_SECONDS)
            except (TimeoutError, OSError):
                log.warning("chat bus: Redis did not close in %.0f s", STOP_SECONDS)
            self._redis = None
        self._listeners.clear()

    async def publish(self, event: dict[str, Any]) -> None:
        assert self._redis is not None, "bus not started"
        await self._redis.publish(self._channel, json.dumps(event, ensure_ascii=False, separators=(",", ":")))
