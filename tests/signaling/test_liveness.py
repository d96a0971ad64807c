"""A participant whose socket stops answering pings is dropped and removed from the room."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from signaling.appkeys import ROOMS, TOKENS
from tests.conftest import meeting_token, running_server, server_config


async def test_dead_socket_is_dropped_and_participant_removed(tmp_path: Path) -> None:
    # Heartbeat scaled down from the default 10 s so the test is quick; the mechanism is the same.
    async with running_server(server_config(tmp_path, heartbeat_seconds=0.5)) as server:
        app, port = server.app, int(server.url.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as http:
            token = await meeting_token(app, "live", "ghost")
            # autoping=False: this client never answers the server's pings, like a vanished laptop.
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}/v1/rooms/live/ws", autoping=False)
            await ws.send_str(json.dumps({"type": "join", "token": token}))
            message = await ws.receive()
            while message.type == aiohttp.WSMsgType.PING:  # a heartbeat can come first when the join took 0.5 s
                message = await ws.receive()
            joined = json.loads(message.data)
            assert joined["type"] == "joined"
            room = app[ROOMS].get("live")
            assert room is not None and len(room.visible) == 1
            for _ in range(50):
                await asyncio.sleep(0.1)
                if not room.visible:
                    break
            assert room.visible == []
            await ws.close()
