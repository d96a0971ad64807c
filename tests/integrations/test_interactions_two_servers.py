"""Slash commands and buttons across two server processes' worth of state: two servers on one PostgreSQL and one
Redis bus. A command run through one reaches its user's socket on the other; its response_url's five uses are
counted across both; a click on one server's socket updates the message on the other's."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.chat.conftest import start_redis
from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, team_channel
from tests.integrations.test_slash_commands import chat_socket, form_of, member_key, next_frame


@pytest.mark.slow
async def test_commands_and_clicks_across_two_servers(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    database_url = request.getfixturevalue("postgres").create_database()
    redis = start_redis(tmp_path / "redis")

    async def integration(req: web.Request, body: bytes) -> web.StreamResponse:
        if req.headers["Content-Type"].startswith("application/x-www-form-urlencoded"):
            return web.json_response({"text": "only for you"})
        return web.json_response({"replace_original": True, "text": f"approved by {json.loads(body)['user']['id']}"})

    # One deployment: its servers share the token secret, which also opens the signing secrets they keep sealed.
    secret = tmp_path / "token_secret"
    secret.write_text(secrets.token_hex(32))

    def config(name: str) -> Any:
        return server_config(tmp_path / name, hooks_allow_private=True, database_url=database_url,
                             redis_url=redis.url, token_secret_file=secret)

    try:
        async with running_server(config("a")) as a, running_server(config("b")) as b, \
                Receiver(integration) as receiver, aiohttp.ClientSession() as http:
            channel = await team_channel(a, "shared")
            bob = await member_key(a, "bob", channel)
            status, _ = await call(a, "POST", "/v1/commands", {"trigger": "ask", "url": receiver.url})
            assert status == 201
            bob_on_b = await chat_socket(http, b, bob)
            admin_on_a = await chat_socket(http, a, a.api_key)

            status, out = await call(a, "POST", "/v1/messages", {"to": channel, "content": "/ask x"}, key=bob)
            assert status == 202 and out["response_type"] == "ephemeral", out
            assert (await next_frame(bob_on_b, "ephemeral"))["ephemeral"]["text"] == "only for you"

            response_url = form_of(receiver.seen[-1].body)["response_url"]
            path = response_url.split("/v1/", 1)[1]
            for n in range(5):  # alternating servers: the count is the store's, not a process's
                server: RunningServer = (a, b)[n % 2]
                async with http.post(f"{server.url}/v1/{path}", json={"text": f"use {n}"}) as r:
                    assert r.status == 200, await r.text()
            async with http.post(f"{b.url}/v1/{path}", json={"text": "sixth"}) as r:
                assert r.status == 410 and (await r.json())["error"]["code"] == "response_url_used_up"

            status, bot = await call(a, "POST", "/v1/bots", {"login": "sharedbot"})
            assert status == 201
            await call(a, "POST", f"/v1/channels/{channel}/members", {"add": ["sharedbot"]})
            status, posted = await call(a, "POST", "/v1/interactive/messages", {
                "to": channel, "content": "ok?", "url": receiver.url,
                "actions": [{"action_id": "ok", "text": "OK", "value": "v"}]}, key=bot["key"])
            assert status == 201, posted
            await bob_on_b.send_str(json.dumps({"type": "action", "message_id": posted["id"], "action_id": "ok"}))
            assert (await next_frame(bob_on_b, "action_result"))["outcome"] == "updated"
            edit = await next_frame(admin_on_a, "edit")
            assert edit["message"]["content"] == "approved by bob" and "actions" not in edit["message"]
    finally:
        redis.stop()
