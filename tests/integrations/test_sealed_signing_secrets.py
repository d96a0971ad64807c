"""Bot and slash-command signing secrets are kept sealed (identity/sealed.py), on both store backends: a copy of
the database does not reveal them, yet what the server sends stays signed with the secret shown once. Secrets a
version before sealing stored in plaintext keep working and are sealed when a server starts."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from identity.appkeys import DATABASE
from identity.sealed import is_sealed
from integrations.interaction_web import INTERACTIONS
from integrations.signing import verify_headers
from store.schema import bots, slash_commands
from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, team_channel

LEGACY_COMMAND_SECRET = "legacyCommandSecret_0123456789abcdefghijklmnop"
LEGACY_BOT_SECRET = "legacyBotSecret_0123456789abcdefghijklmnopqrstu"


async def stored(server: RunningServer) -> tuple[str, str]:
    """The signing secrets as the store holds them: the command's, the bot's."""
    async with server.app[DATABASE].read() as conn:
        command = (await conn.execute(select(slash_commands.c.secret))).scalar_one()
        bot = (await conn.execute(select(bots.c.signing_secret))).scalar_one()
    return str(command), str(bot)


async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.json_response({"text": "ok"})


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_signing_secrets_are_sealed_and_plaintext_ones_are_sealed_at_start(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres").create_database() if backend == "postgres" else None
    config = server_config(tmp_path, hooks_allow_private=True, database_url=url)
    async with Receiver(answer) as receiver:
        async with running_server(config) as server:
            channel = await team_channel(server, "ops")
            status, command = await call(server, "POST", "/v1/commands", {"trigger": "deploy", "url": receiver.url})
            assert status == 201, command
            status, bot = await call(server, "POST", "/v1/bots", {"login": "expenses"})
            assert status == 201, bot
            command_row, bot_row = await stored(server)
            assert is_sealed(command_row) and command["secret"] not in command_row, command_row
            assert is_sealed(bot_row) and bot["signing_secret"] not in bot_row, bot_row
            # Sealed for its own row: the same secret sealed twice looks different (a fresh nonce each time).
            assert command_row != bot_row
            status, out = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/deploy now"})
            assert status == 202, out
            verify_headers(command["secret"], receiver.seen[-1].headers, receiver.seen[-1].body)
            # As a version before sealing left them: plaintext in the store.
            async def as_before_sealing(conn: AsyncConnection) -> None:
                await conn.execute(update(slash_commands).values(secret=LEGACY_COMMAND_SECRET))
                await conn.execute(update(bots).values(signing_secret=LEGACY_BOT_SECRET))
            await server.app[DATABASE].write(as_before_sealing)
        config = server_config(tmp_path, hooks_allow_private=True, database_url=url)
        async with running_server(config) as server:
            command_row, bot_row = await stored(server)
            assert is_sealed(command_row) and LEGACY_COMMAND_SECRET not in command_row, command_row
            assert is_sealed(bot_row) and LEGACY_BOT_SECRET not in bot_row, bot_row
            status, out = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/deploy again"})
            assert status == 202, out
            seen = receiver.seen[-1]
            verify_headers(LEGACY_COMMAND_SECRET, seen.headers, seen.body)  # the secret the integration was given
            assert dict(urllib.parse.parse_qsl(seen.body.decode()))["text"] == "again"
            assert LEGACY_COMMAND_SECRET not in json.dumps(await call(server, "GET", "/v1/commands"))
            # What signs the bot's clicks (test_interactive.py drives them): the secret the bot was given.
            assert await server.app[INTERACTIONS].bots.signing_secret("expenses") == LEGACY_BOT_SECRET
