"""Who owns an integration: bots are made under new logins only (never an existing user's, nor the server's own);
hooks and slash commands are seen by their maker and by owners and admins, and removed by their maker or someone
ranked above the maker. Against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, team_channel


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(server_config(tmp_path, hooks_allow_private=True)) as running:
        yield running


async def user_token(server: RunningServer, login: str, role: str, channel: str | None = None) -> str:
    status, _ = await call(server, "POST", "/v1/users", {"login": login, "role": role})
    assert status in (200, 201)
    if channel is not None:
        status, _ = await call(server, "POST", f"/v1/channels/{channel}/members", {"add": [login]})
        assert status == 200
    status, minted = await call(server, "POST", f"/v1/users/{login}/tokens", {"ttl": 3600})
    assert status == 201, minted
    return str(minted["token"])


def code(answer: Any) -> str:
    return str(answer["error"]["code"])


async def test_a_bot_is_never_made_over_an_existing_or_reserved_login(server: RunningServer) -> None:
    channel = await team_channel(server, "bots")
    status, hook = await call(server, "POST", "/v1/hooks/incoming", {"channel": channel, "name": "CI"})
    assert status == 201
    await call(server, "POST", "/v1/commands", {"trigger": "deploy", "url": "http://127.0.0.1:9/x"})
    await user_token(server, "carol", "member")
    for login in ("convene", "Convene", hook["bot"], "HOOK-x", "hook_old", "cmd_deploy", "cmd_other"):
        status, got = await call(server, "POST", "/v1/bots", {"login": login})
        assert status == 409 and code(got) == "login_reserved", (login, got)
    status, got = await call(server, "POST", "/v1/bots", {"login": "carol"})
    assert status == 409 and code(got) == "login_taken", got
    status, bot = await call(server, "POST", "/v1/bots", {"login": "helper"})
    assert status == 201, bot
    status, got = await call(server, "POST", "/v1/bots", {"login": "helper"})  # no second key for it this way
    assert status == 409 and code(got) == "login_taken", got
    status, listing = await call(server, "GET", "/v1/bots")
    assert [b["login"] for b in listing["bots"]] == ["helper"]


async def test_hooks_and_commands_are_their_makers(server: RunningServer) -> None:
    channel = await team_channel(server, "owned")
    status, _ = await call(server, "PUT", "/v1/admin/permissions",
                           {"manage_integrations": ["owner", "admin", "member"]})
    assert status == 200
    mia = await user_token(server, "mia", "member", channel)
    max_ = await user_token(server, "max", "member", channel)
    ada = await user_token(server, "ada", "admin", channel)

    status, by_key = await call(server, "POST", "/v1/hooks/outgoing",
                                {"name": "k", "channel": channel, "url": "http://127.0.0.1:9/key?token=k"})
    assert status == 201
    status, by_mia = await call(server, "POST", "/v1/hooks/outgoing",
                                {"name": "m", "channel": channel, "url": "http://127.0.0.1:9/mia?token=m"}, key=mia)
    assert status == 201, by_mia
    status, cmd_key = await call(server, "POST", "/v1/commands", {"trigger": "keycmd", "url": "http://127.0.0.1:9/k"})
    assert status == 201
    status, cmd_mia = await call(server, "POST", "/v1/commands", {"trigger": "miacmd", "url": "http://127.0.0.1:9/m"},
                                 key=mia)
    assert status == 201

    # A member sees and reaches only their own.
    _, listed = await call(server, "GET", "/v1/hooks", key=max_)
    assert listed["hooks"] == []
    _, listed = await call(server, "GET", "/v1/hooks", key=mia)
    assert [h["id"] for h in listed["hooks"]] == [by_mia["id"]]
    _, listed = await call(server, "GET", "/v1/commands", key=max_)
    assert listed["commands"] == []
    _, listed = await call(server, "GET", "/v1/commands", key=mia)
    assert [c["id"] for c in listed["commands"]] == [cmd_mia["id"]]
    for hook_id in (by_key["id"], by_mia["id"]):
        for method in ("GET", "DELETE"):
            status, got = await call(server, method, f"/v1/hooks/{hook_id}", key=max_)
            assert status == 404 and code(got) == "hook_not_found", (method, got)
    status, got = await call(server, "DELETE", f"/v1/commands/{cmd_mia['id']}", key=max_)
    assert status == 404 and code(got) == "command_not_found"
    status, got = await call(server, "DELETE", f"/v1/hooks/{by_key['id']}", key=mia)
    assert status == 404

    # Admins see everyone's; they remove a member's, not another admin's.
    _, listed = await call(server, "GET", "/v1/hooks", key=ada)
    assert {h["id"] for h in listed["hooks"]} == {by_key["id"], by_mia["id"]}
    status, got = await call(server, "GET", f"/v1/hooks/{by_mia['id']}", key=ada)
    assert status == 200 and got["url"].endswith("token=m")
    status, got = await call(server, "DELETE", f"/v1/hooks/{by_key['id']}", key=ada)
    assert status == 403 and code(got) == "not_permitted", got
    status, got = await call(server, "DELETE", f"/v1/commands/{cmd_key['id']}", key=ada)
    assert status == 403 and code(got) == "not_permitted", got
    status, _ = await call(server, "DELETE", f"/v1/hooks/{by_mia['id']}", key=ada)
    assert status == 200
    status, _ = await call(server, "DELETE", f"/v1/commands/{cmd_mia['id']}", key=ada)
    assert status == 200
    # The maker removes their own.
    status, _ = await call(server, "DELETE", f"/v1/hooks/{by_key['id']}")
    assert status == 200
    status, _ = await call(server, "DELETE", f"/v1/commands/{cmd_key['id']}")
    assert status == 200


async def test_meeting_tokens_post_slashes_as_text(server: RunningServer) -> None:
    """A meeting token's caller (a guest here) never runs a slash command: the line is posted as text and the
    integration is not called on their behalf."""
    async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"text": "ran"})

    async with Receiver(answer) as receiver:
        status, _ = await call(server, "POST", "/v1/commands", {"trigger": "deploy", "url": receiver.url})
        assert status == 201
        guest = await server.token("standup", "visitor-1")
        status, posted = await call(server, "POST", "/v1/messages", {"to": "standup", "content": "/deploy prod"},
                                    key=guest)
        assert status == 201 and posted["content"] == "/deploy prod", posted
        assert receiver.seen == []
