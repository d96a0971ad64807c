"""Who owns an integration: bots are made under new logins only (never an existing user's, nor the server's own);
hooks and slash commands are seen by their maker and by owners and admins, and removed by their maker or someone
ranked above the maker. Against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import call, team_channel


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
    for login in ("convene", hook["bot"], "hook_old", "cmd_deploy", "cmd_other"):
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
