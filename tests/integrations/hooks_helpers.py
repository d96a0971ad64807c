"""Helpers for the webhook tests: calls to a running server, and a real loopback HTTP receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.conftest import RunningServer, free_port


async def call(server: RunningServer, method: str, path: str, body: Any = None,
               key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key or server.api_key}"}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, server.url + path, json=body, headers=headers) as r:
            return r.status, await r.json()


async def team_channel(server: RunningServer, name: str) -> str:
    status, channel = await call(server, "POST", "/v1/channels", {"name": name, "kind": "team"})
    assert status in (200, 201), channel
    return str(channel["id"])


async def messages(server: RunningServer, channel: str) -> list[dict[str, Any]]:
    status, got = await call(server, "GET", f"/v1/channels/{channel}/messages?limit=100")
    assert status == 200, got
    return list(got["messages"])


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent and answers with `respond`."""

    respond: Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(dict(request.headers), body))
        self.arrived.set()
        return await self.respond(request, body)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
