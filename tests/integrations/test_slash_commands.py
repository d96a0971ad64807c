"""Slash commands against real loopback receivers: in_channel and ephemeral answers, the 3 s limit, the
response_url's five uses, the signature; and bots that stop working when their owner is deactivated."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select, update

from identity.appkeys import API_KEYS, DATABASE
from integrations.signing import verify_headers
from signaling.access_log import redact_url
from store.schema import audit_log, command_invocations
from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, messages, team_channel


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A real server on either store backend, allowed to call integrations on loopback."""
    url = request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None
    async with running_server(server_config(tmp_path, hooks_allow_private=True, database_url=url)) as running:
        yield running


async def chat_socket(http: aiohttp.ClientSession, server: RunningServer, key: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(server.url.replace("http", "ws", 1) + "/v1/chat/ws")
    await ws.send_str(json.dumps({"type": "auth", "token": key}))
    hello = json.loads((await ws.receive(timeout=5)).data)
    assert hello["type"] == "hello", hello
    return ws


async def next_frame(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 6) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(0.05, deadline - time.monotonic()))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        if frame.get("type") == kind:
            return dict(frame)


async def frames_until_pong(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every frame the socket gets before the answer to a ping sent now (what it was sent so far)."""
    await ws.send_str(json.dumps({"type": "ping", "id": "sync"}))
    seen = []
    while True:
        frame = json.loads((await ws.receive(timeout=5)).data)
        if frame.get("type") == "pong" and frame.get("id") == "sync":
            return seen
        seen.append(frame)


async def member_key(server: RunningServer, login: str, channel: str) -> str:
    _, key = await server.app[API_KEYS].create(login, "member")
    status, _ = await call(server, "POST", "/v1/users", {"login": login, "role": "member"})
    assert status in (200, 201)
    status, _ = await call(server, "POST", f"/v1/channels/{channel}/members", {"add": [login]})
    assert status == 200
    return key


async def register(server: RunningServer, trigger: str, url: str) -> dict[str, Any]:
    status, command = await call(server, "POST", "/v1/commands", {"trigger": trigger, "url": url})
    assert status == 201, command
    assert command["secret"] and command["trigger"] == trigger
    return command


def form_of(body: bytes) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(body.decode()))


async def test_a_command_answered_in_channel_and_ephemeral(server: RunningServer) -> None:
    async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
        text = form_of(body)["text"]
        if text == "public":
            return web.json_response({"response_type": "in_channel", "text": "Deployed to prod"})
        return web.json_response({"text": f"only you see: {text}"})  # ephemeral is the default

    channel = await team_channel(server, "ops")
    bob = await member_key(server, "bob", channel)
    async with Receiver(answer) as receiver, aiohttp.ClientSession() as http:
        command = await register(server, "deploy", receiver.url)
        mine, bobs = await chat_socket(http, server, server.api_key), await chat_socket(http, server, bob)

        status, out = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/deploy public"})
        assert status == 202 and out["response_type"] == "in_channel", out
        assert out["message"]["content"] == "Deployed to prod" and out["message"]["author"] == "cmd_deploy"
        # The request was Slack's form, signed with the command's secret as a receiver checks it.
        seen = receiver.seen[-1]
        verify_headers(command["secret"], seen.headers, seen.body)
        form = form_of(seen.body)
        assert form["command"] == "/deploy" and form["text"] == "public" and form["user_id"] == "tests"
        assert form["channel_id"] == channel and form["channel_name"] == "ops" and form["trigger_id"]
        assert form["response_url"].startswith(server.url + "/v1/commands/responses/")
        assert seen.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        # Everyone sees the answer; nobody sees the command line as a message.
        assert (await next_frame(bobs, "message"))["message"]["content"] == "Deployed to prod"
        contents = [m["content"] for m in await messages(server, channel)]
        assert "Deployed to prod" in contents and not any(c.startswith("/deploy") for c in contents)

        status, out = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/deploy status  x"})
        assert status == 202 and out["response_type"] == "ephemeral", out
        ephemeral = (await next_frame(mine, "ephemeral"))["ephemeral"]
        assert ephemeral["text"] == "only you see: status  x" and ephemeral["channel"] == channel
        assert ephemeral["command"] == "/deploy"
        assert not [f for f in await frames_until_pong(bobs) if f.get("type") == "ephemeral"]  # bob: nothing
        assert "only you see: status  x" not in [m["content"] for m in await messages(server, channel)]
        # A slash that names no command is posted as text.
        status, plain = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/etc/hosts is odd"})
        assert status == 201 and plain["content"] == "/etc/hosts is odd"


async def test_a_slow_command_shows_the_user_an_error_after_3_seconds(server: RunningServer) -> None:
    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.sleep(4.5)
        return web.json_response({"text": "too late"})

    channel = await team_channel(server, "slow")
    async with Receiver(slow) as receiver, aiohttp.ClientSession() as http:
        await register(server, "report", receiver.url)
        ws = await chat_socket(http, server, server.api_key)
        started = time.monotonic()
        status, out = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/report today"})
        took = time.monotonic() - started
        assert status == 202 and out["error"]["code"] == "integration_timeout", out
        assert 2.9 <= took < 4.0, took
        ephemeral = (await next_frame(ws, "ephemeral"))["ephemeral"]
        assert ephemeral["error"]["code"] == "integration_timeout" and "/report" in ephemeral["text"]
        assert not any(m["content"].startswith("/report") for m in await messages(server, channel))


async def test_response_url_works_five_times_then_410(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    async def ack(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=200)  # empty: acknowledged, the answers come by response_url

    channel = await team_channel(server, "later")
    async with Receiver(ack) as receiver, aiohttp.ClientSession() as http:
        await register(server, "build", receiver.url)
        ws = await chat_socket(http, server, server.api_key)
        status, out = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/build main"})
        assert status == 202 and out["response_type"] is None, out
        response_url = form_of(receiver.seen[-1].body)["response_url"]
        inv_id, secret = response_url.rsplit("/", 2)[-2:]

        async def respond(body: Any, url: str = response_url) -> tuple[int, Any]:
            async with http.post(url, json=body) as r:  # no credential: the URL is one
                return r.status, await r.json()

        for n in range(1, 6):
            kind = "in_channel" if n % 2 else "ephemeral"
            status, got = await respond({"response_type": kind, "text": f"step {n}"})
            assert status == 200 and got["uses"] == n and got["response_type"] == kind, got
        status, got = await respond({"text": "step 6"})
        assert status == 410 and got["error"]["code"] == "response_url_used_up", got
        posted = [m["content"] for m in await messages(server, channel)]
        assert [p for p in posted if p.startswith("step")] == ["step 1", "step 3", "step 5"]
        ephemerals = [f["ephemeral"]["text"] for f in await frames_until_pong(ws) if f.get("type") == "ephemeral"]
        assert ephemerals == ["step 2", "step 4"]
        # A wrong secret is not found (and uses nothing); a bad body is refused before it counts.
        status, got = await respond({"text": "x"}, response_url.rsplit("/", 1)[0] + "/wrong")
        assert status == 404 and got["error"]["code"] == "response_url_not_found"
        status, got = await respond({"response_type": "shout", "text": "x"})
        assert status == 400 and got["error"]["code"] == "invalid_field"
        # Another run's URL, unused but past its 30 minutes, is gone too.
        status, _ = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/build again"})
        later = form_of(receiver.seen[-1].body)["response_url"]
        await server.app[DATABASE].write(lambda conn: conn.execute(update(command_invocations).where(
            command_invocations.c.id == later.rsplit("/", 2)[-2]).values(expires_at=time.time() - 1)))
        status, got = await respond({"text": "too late"}, later)
        assert status == 410 and got["error"]["code"] == "response_url_expired", got
    # The secret is kept out of the access log.
    assert secret not in redact_url(f"/v1/commands/responses/{inv_id}/{secret}")
    assert redact_url(f"/v1/commands/responses/{inv_id}/{secret}") == f"/v1/commands/responses/{inv_id}/[redacted]"


async def test_commands_are_managed_by_holders_of_manage_integrations(server: RunningServer) -> None:
    channel = await team_channel(server, "mgmt")
    bob = await member_key(server, "bob", channel)
    status, got = await call(server, "POST", "/v1/commands", {"trigger": "x", "url": "http://127.0.0.1:9/x"}, key=bob)
    assert status == 403 and got["error"]["code"] == "not_permitted"
    command = await register(server, "lookup", "http://127.0.0.1:9/lookup")
    status, got = await call(server, "POST", "/v1/commands", {"trigger": "lookup", "url": "http://127.0.0.1:9/y"})
    assert status == 409 and got["error"]["code"] == "command_exists"
    status, listing = await call(server, "GET", "/v1/commands")
    assert status == 200 and [c["trigger"] for c in listing["commands"]] == ["lookup"]
    assert "secret" not in listing["commands"][0]
    status, _ = await call(server, "DELETE", f"/v1/commands/{command['id']}")
    assert status == 200
    status, plain = await call(server, "POST", "/v1/messages", {"to": channel, "content": "/lookup now"})
    assert status == 201 and plain["content"] == "/lookup now"  # no such command any more: plain text
    async with server.app[DATABASE].read() as conn:  # both changes are in the audit log, by the admin key's user
        rows = (await conn.execute(select(audit_log.c.event_type, audit_log.c.actor).where(
            audit_log.c.event_type.in_(["command.create", "command.delete"])).order_by(audit_log.c.seq))).all()
    assert [tuple(r) for r in rows] == [("command.create", "tests"), ("command.delete", "tests")]


async def test_a_bot_is_disabled_when_its_owner_is_deactivated(server: RunningServer) -> None:
    status, _ = await call(server, "POST", "/v1/users", {"login": "alice", "role": "admin"})
    assert status in (200, 201)
    status, minted = await call(server, "POST", "/v1/users/alice/tokens", {"ttl": 3600})
    assert status == 201
    status, bot = await call(server, "POST", "/v1/bots", {"login": "approver", "name": "Approver"},
                             key=minted["token"])
    assert status == 201 and bot["owner"] == "alice" and bot["key"].startswith("cvk_") and bot["signing_secret"]
    status, me = await call(server, "GET", "/v1/me", key=bot["key"])
    assert status == 200 and me["user"]["role"] == "bot"
    status, listing = await call(server, "GET", "/v1/bots")
    assert {"login": "approver", "owner": "alice"}.items() <= listing["bots"][0].items()
    async with aiohttp.ClientSession() as http:
        ws = await chat_socket(http, server, bot["key"])
        status, _ = await call(server, "POST", "/v1/users/alice/deactivate")
        assert status == 200
        closing = await ws.receive(timeout=5)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4410, closing
    await asyncio.sleep(1.1)  # a verified key is trusted for at most a second
    status, got = await call(server, "GET", "/v1/me", key=bot["key"])
    assert status == 401 and got["error"]["code"] == "bot_disabled", got
