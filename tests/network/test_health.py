"""/healthz and /readyz on a real server: alive, ready, not ready while starting, shutting down or without a chat store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from chat.web import CHAT
from signaling.app import create_app
from signaling.health import LIFECYCLE, Phase
from tests.conftest import RunningServer, running_server, server_config


async def probe(url: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + path) as r:
            return r.status, await r.json()


async def test_a_running_server_is_alive_and_ready(server: RunningServer) -> None:
    assert await probe(server.url, "/healthz") == (200, {"status": "ok"})
    assert await probe(server.url, "/readyz") == (200, {"status": "ready", "checks": {"rooms": "ok", "chat": "ok"}})


async def test_a_media_worker_is_ready_without_a_chat_store(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path / "data", media_only=True)) as media:
        assert await probe(media.url, "/readyz") == (200, {"status": "ready", "checks": {"rooms": "ok"}})


async def test_not_ready_until_started_and_once_shutting_down_while_still_alive(tmp_path: Path) -> None:
    app = create_app(server_config(tmp_path / "data"))
    assert app[LIFECYCLE].phase is Phase.STARTING  # aiohttp has not run the startup hooks yet
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    config = server_config(tmp_path / "data")
    await web.TCPSite(runner, config.host, config.port).start()
    url = f"http://{config.host}:{config.port}"
    try:
        assert (await probe(url, "/readyz"))[0] == 200
        # aiohttp's shutdown signal, as on SIGTERM (here without closing the listening socket first, so the
        # probe still reaches us): the balancer is told to stop sending joins; liveness holds.
        await app.shutdown()
        status, body = await probe(url, "/readyz")
        assert status == 503 and body["error"]["code"] == "not_ready", body
        assert body["error"]["details"] == {"reason": "shutting down"}
        assert await probe(url, "/healthz") == (200, {"status": "ok"})
    finally:
        await runner.cleanup()


async def test_a_chat_store_that_is_not_open_makes_the_server_not_ready_until_it_is_again(server: RunningServer) -> None:
    db = server.app[CHAT].store.db
    users = db.open_count
    for _ in range(users):  # every user closes it, as when the database went away: reads fail
        await db.close()
    try:
        status, body = await probe(server.url, "/readyz")
        assert status == 503 and body["error"]["code"] == "not_ready", body
        assert body["error"]["details"] == {"reason": "chat store unavailable"}
        assert (await probe(server.url, "/healthz"))[0] == 200
    finally:
        for _ in range(users):
            await db.open()
    assert (await probe(server.url, "/readyz"))[0] == 200
