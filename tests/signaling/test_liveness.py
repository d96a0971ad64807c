"""A participant whose socket stops answering pings is dropped and removed from the room."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from aiohttp import web

from signaling.app import create_app
from signaling.appkeys import ROOMS, TOKENS
from signaling.config import Config
from tests.conftest import free_port


async def test_dead_socket_is_dropped_and_participant_removed(tmp_path: Path) -> None:
    port = free_port()
    # Heartbeat scaled down from the default 10 s so the test is quick; the mechanism is the same.
    app = create_app(Config(port=port, data_dir=tmp_path, heartbeat_seconds=0.5))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            # autoping=False: this client never answers the server's pings, like a vanished laptop.
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}/v1/rooms/live/ws", autoping=False)
            await ws.send_str(json.dumps({"type": "join", "token": app[TOKENS].mint("live", "ghost")}))
            joined = json.loads((await ws.receive()).data)
            assert joined["type"] == "joined"
            room = app[ROOMS].get("live")
            assert room is not None and len(room.visible) == 1
            for _ in range(50):
                await asyncio.sleep(0.1)
                if not room.visible:
                    break
            assert room.visible == []
            await ws.close()
    finally:
        await runner.cleanup()
