"""Two server processes on one store and one Redis bus both see every message; an outgoing webhook still sends
each message once, by whichever process records the delivery first."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from aiohttp import web

from integrations.hooks_web import HOOKS
from tests.chat.conftest import start_redis
from tests.conftest import running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, messages, team_channel

MESSAGES = 10


async def _ok(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.json_response({"text": "seen"})


async def test_each_message_is_sent_once_although_both_processes_see_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    redis = start_redis(tmp_path / "redis")
    monkeypatch.setenv("CONVENE_CHAT_REDIS_PREFIX", f"hooks-{secrets.token_hex(4)}:")
    try:
        data = tmp_path / "data"  # one SQLite store, one server secret
        configs = [server_config(data, redis_url=redis.url, hooks_allow_private=True) for _ in range(2)]
        async with running_server(configs[0]) as a, running_server(configs[1]) as b, Receiver(_ok) as receiver:
            channel = await team_channel(a, "shared")
            status, hook = await call(a, "POST", "/v1/hooks/outgoing", {"name": "Once", "url": receiver.url,
                                                                        "channel": channel})
            assert status == 201
            await asyncio.sleep(2.1)  # both processes' hook caches see it
            for n in range(MESSAGES):
                status, _ = await call(b if n % 2 else a, "POST", "/v1/messages", {"to": channel, "content": f"m{n}"})
                assert status == 201
            for _ in range(50):
                await asyncio.gather(a.app[HOOKS].outgoing.idle(), b.app[HOOKS].outgoing.idle())
                if len(receiver.seen) >= MESSAGES and len(await messages(a, channel)) >= 2 * MESSAGES:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # a late second send would arrive by now
            assert sorted(s.body.count(b'"text": "m') for s in receiver.seen) == [1] * MESSAGES
            assert len(receiver.seen) == MESSAGES
            contents = [m["content"] for m in await messages(a, channel)]
            assert contents.count("seen") == MESSAGES  # one reply per message, not two
    finally:
        redis.stop()
