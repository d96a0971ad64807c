"""Interactive messages against a real loopback receiver: a bot's approval request with two buttons, clicks from the
chat socket and REST, signed payloads with the server-side value and context, an update everyone sees, an answer
only the clicker sees; and the integration URL, context and values never reach a client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from integrations.signing import verify_headers
from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, team_channel
from tests.integrations.test_slash_commands import chat_socket, frames_until_pong, member_key, next_frame

SECRET_CONTEXT = "ctx-do-not-leak"
SECRET_VALUE = "expense-7-value"


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A real server on either store backend, allowed to call integrations on loopback."""
    url = request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None
    async with running_server(server_config(tmp_path, hooks_allow_private=True, database_url=url)) as running:
        yield running


async def make_bot(server: RunningServer, login: str, channel: str) -> dict[str, Any]:
    status, bot = await call(server, "POST", "/v1/bots", {"login": login, "name": "Approvals"})
    assert status == 201, bot
    status, _ = await call(server, "POST", f"/v1/channels/{channel}/members", {"add": [login]})
    assert status == 200
    return bot


def approval_request(channel: str, url: str) -> dict[str, Any]:
    return {"to": channel, "content": "Expense #7: 120 EUR for travel", "url": url,
            "context": {"expense": 7, "note": SECRET_CONTEXT},
            "actions": [{"action_id": "approve", "text": "Approve", "value": SECRET_VALUE, "style": "primary"},
                        {"action_id": "reject", "text": "Reject", "value": SECRET_VALUE, "style": "danger"}]}


def assert_no_secrets(payload: object, url: str) -> None:
    text = json.dumps(payload)
    for secret in (SECRET_CONTEXT, SECRET_VALUE, url, url.split("/hook")[0], '"context"', '"url"', '"value"'):
        assert secret not in text, f"{secret!r} reached a client: {text[:300]}"


async def test_an_approval_flow_over_the_socket_and_rest(server: RunningServer) -> None:
    async def integration(request: web.Request, body: bytes) -> web.StreamResponse:
        click = json.loads(body)
        if click["action_id"] == "approve":
            return web.json_response({"replace_original": True,
                                      "text": f"Expense #7 approved by {click['user']['id']}"})
        return web.json_response({"text": "Reply in the thread with a reason"})

    channel = await team_channel(server, "approvals")
    bob = await member_key(server, "bob", channel)
    async with Receiver(integration) as receiver, aiohttp.ClientSession() as http:
        bot = await make_bot(server, "expenses", channel)
        admin_ws, bob_ws = await chat_socket(http, server, server.api_key), await chat_socket(http, server, bob)
        status, posted = await call(server, "POST", "/v1/interactive/messages",
                                    approval_request(channel, receiver.url), key=bot["key"])
        assert status == 201, posted
        assert posted["actions"] == [{"action_id": "approve", "text": "Approve", "style": "primary"},
                                     {"action_id": "reject", "text": "Reject", "style": "danger"}]
        event = await next_frame(bob_ws, "message")
        assert event["message"]["actions"] == posted["actions"]
        assert_no_secrets(posted, receiver.url)
        assert_no_secrets(event, receiver.url)
        _, history = await call(server, "GET", f"/v1/channels/{channel}/messages", key=bob)
        assert_no_secrets(history, receiver.url)

        # Bob rejects from the socket: the integration answers him alone.
        await bob_ws.send_str(json.dumps({"type": "action", "message_id": posted["id"], "action_id": "reject"}))
        result = await next_frame(bob_ws, "action_result")
        assert result["outcome"] == "ephemeral", result
        seen = receiver.seen[-1]
        verify_headers(bot["signing_secret"], seen.headers, seen.body)
        click = json.loads(seen.body)
        assert click["user"]["id"] == "bob" and click["channel"] == {"id": channel, "name": "approvals"}
        assert click["message_id"] == posted["id"] and click["action_id"] == "reject"
        assert click["value"] == SECRET_VALUE and click["context"] == {"expense": 7, "note": SECRET_CONTEXT}
        ephemerals = [f for f in await frames_until_pong(admin_ws) if f.get("type") == "ephemeral"]
        assert not ephemerals  # the admin saw nothing of bob's answer

        # The admin approves over REST: the message changes for everyone, its buttons gone.
        status, outcome = await call(server, "POST", f"/v1/messages/{posted['id']}/actions/approve")
        assert status == 200 and outcome["outcome"] == "updated", outcome
        edit = await next_frame(bob_ws, "edit")
        assert edit["message"]["id"] == posted["id"]
        assert edit["message"]["content"] == "Expense #7 approved by tests" and "actions" not in edit["message"]
        assert_no_secrets(edit, receiver.url)
        status, gone = await call(server, "POST", f"/v1/messages/{posted['id']}/actions/approve", key=bob)
        assert status == 404 and gone["error"]["code"] == "action_not_found"


async def test_only_owned_bots_post_buttons_and_bad_buttons_are_refused(server: RunningServer) -> None:
    channel = await team_channel(server, "checks")
    bob = await member_key(server, "bob", channel)
    body = approval_request(channel, "http://127.0.0.1:9/hook")
    status, got = await call(server, "POST", "/v1/interactive/messages", body, key=bob)
    assert status == 403 and got["error"]["code"] == "not_permitted"
    bot = await make_bot(server, "checker", channel)
    for bad in ({"actions": []}, {"actions": [{"action_id": "a b", "text": "x"}]},
                {"actions": [{"action_id": "a", "text": "x", "style": "blink"}]}, {"url": "ftp://x/y"},
                {"actions": [{"action_id": "a", "text": "x"}, {"action_id": "a", "text": "y"}]}):
        status, got = await call(server, "POST", "/v1/interactive/messages", {**body, **bad}, key=bot["key"])
        assert status == 400 and got["error"]["code"] == "invalid_field", (bad, got)


async def test_a_slow_integration_tells_the_clicker(server: RunningServer) -> None:
    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.sleep(4.5)
        return web.json_response({"text": "late"})

    channel = await team_channel(server, "slowclick")
    async with Receiver(slow) as receiver, aiohttp.ClientSession() as http:
        bot = await make_bot(server, "slowbot", channel)
        ws = await chat_socket(http, server, server.api_key)
        status, posted = await call(server, "POST", "/v1/interactive/messages",
                                    approval_request(channel, receiver.url), key=bot["key"])
        assert status == 201
        await ws.send_str(json.dumps({"type": "action", "message_id": posted["id"], "action_id": "approve"}))
        ephemeral = (await next_frame(ws, "ephemeral"))["ephemeral"]
        assert ephemeral["error"]["code"] == "integration_timeout" and ephemeral["message_id"] == posted["id"]
        result = await next_frame(ws, "action_result")
        assert result["outcome"] == "error"


async def test_a_click_on_a_disabled_bots_message_sends_nothing(server: RunningServer) -> None:
    async def integration(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"text": "should not be asked"})

    channel = await team_channel(server, "owned")
    status, _ = await call(server, "POST", "/v1/users", {"login": "alice", "role": "admin"})
    assert status in (200, 201)
    _, minted = await call(server, "POST", "/v1/users/alice/tokens", {"ttl": 3600})
    async with Receiver(integration) as receiver:
        status, bot = await call(server, "POST", "/v1/bots", {"login": "alicebot"}, key=minted["token"])
        assert status == 201, bot
        await call(server, "POST", f"/v1/channels/{channel}/members", {"add": ["alicebot"]})
        status, posted = await call(server, "POST", "/v1/interactive/messages",
                                    approval_request(channel, receiver.url), key=bot["key"])
        assert status == 201
        status, _ = await call(server, "POST", "/v1/users/alice/deactivate")
        assert status == 200
        status, got = await call(server, "POST", f"/v1/messages/{posted['id']}/actions/approve")
        assert status == 403 and got["error"]["code"] == "bot_disabled", got
        assert receiver.seen == []
