"""Outgoing webhooks against real HTTP receivers on loopback: what they are sent is signed so that
`integrations.signing.verify` accepts it (and refuses it replayed 5 minutes later, or altered); a JSON reply is
posted back; a slow receiver times out, the post never waits for it, and the owner sees the failure; the server
sends to public addresses only unless told otherwise."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from integrations import signing
from integrations.hooks_web import HOOKS
from signaling.appkeys import API_KEYS
from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, messages, team_channel


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(server_config(tmp_path / "data", hooks_allow_private=True)) as running:
        yield running


async def member(server: RunningServer, channel: str) -> str:
    _, key = await server.app[API_KEYS].create("mia", "member")
    await call(server, "GET", "/v1/me", key=key)
    status, _ = await call(server, "POST", f"/v1/channels/{channel}/members", {"add": ["mia"]})
    assert status == 200
    return key


async def post(server: RunningServer, key: str, channel: str, text: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    status, message = await call(server, "POST", "/v1/messages", {"to": channel, "content": text}, key=key)
    assert status == 201, message
    return time.perf_counter() - started, message


async def pong(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.json_response({"text": f"deploying {json.loads(body)['text'].split()[1]}"})


async def test_a_trigger_word_sends_a_signed_payload_and_the_reply_is_posted_back(server: RunningServer) -> None:
    channel = await team_channel(server, "ops")
    key = await member(server, channel)
    async with Receiver(pong) as receiver:
        status, hook = await call(server, "POST", "/v1/hooks/outgoing", {
            "name": "Deployer", "url": receiver.url, "channel": channel, "trigger_words": ["!deploy"]})
        assert status == 201 and len(hook["secret"]) == 64, hook
        await post(server, key, channel, "no trigger here")
        _, message = await post(server, key, channel, "!deploy api")
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        await server.app[HOOKS].outgoing.idle()
    [seen] = receiver.seen
    # What a receiver does: check the signature and the age with the shared secret.
    signing.verify_headers(hook["secret"], seen.headers, seen.body)
    payload = json.loads(seen.body)
    assert payload == {"org": "default", "team_id": "default", "channel_id": channel, "channel_name": "ops",
                       "timestamp": payload["timestamp"], "user_id": "mia", "user_name": "mia",
                       "post_id": message["id"], "text": "!deploy api", "trigger_word": "!deploy", "file_ids": []}
    assert abs(payload["timestamp"] / 1000 - message["created_at"]) < 0.01
    stamp = int(seen.headers[signing.TIMESTAMP_HEADER])
    assert abs(stamp - time.time()) < 30 and seen.headers[signing.SIGNATURE_HEADER].startswith("v0=")
    # The reply, by the hook's bot; the bot's own post triggers nothing (no loop: one request in all).
    posts = await messages(server, channel)
    assert [(m["author"], m["content"]) for m in posts][-1] == (hook["bot"], "deploying api")
    _, status_now = await call(server, "GET", f"/v1/hooks/{hook['id']}")
    assert status_now["deliveries"][0]["status"] == "ok" and status_now["last_error"] is None


async def test_verify_refuses_a_replay_older_than_five_minutes_and_an_altered_body(server: RunningServer) -> None:
    channel = await team_channel(server, "replay")
    key = await member(server, channel)
    async with Receiver(lambda r, b: _ok()) as receiver:
        _, hook = await call(server, "POST", "/v1/hooks/outgoing",
                             {"name": "Everything", "url": receiver.url, "channel": channel})
        await post(server, key, channel, "hello")
        await asyncio.wait_for(receiver.arrived.wait(), 5)
    seen = receiver.seen[0]
    stamp = int(seen.headers[signing.TIMESTAMP_HEADER])
    signing.verify_headers(hook["secret"], seen.headers, seen.body, now=stamp + 299)
    with pytest.raises(signing.StaleRequest):  # the same request replayed 5 minutes and more later
        signing.verify_headers(hook["secret"], seen.headers, seen.body, now=stamp + 301)
    with pytest.raises(signing.InvalidSignature):
        signing.verify_headers(hook["secret"], seen.headers, seen.body.replace(b"hello", b"hellO"))
    with pytest.raises(signing.InvalidSignature):
        signing.verify_headers("another secret", seen.headers, seen.body)
    with pytest.raises(signing.InvalidSignature):  # a fresh timestamp on the old signature
        signing.verify(hook["secret"], str(stamp + 1), seen.body, seen.headers[signing.SIGNATURE_HEADER], now=stamp)


async def _ok() -> web.StreamResponse:
    return web.Response(text="fine")


async def test_a_slow_receiver_times_out_off_the_request_path_and_the_owner_sees_it(server: RunningServer) -> None:
    outgoing = server.app[HOOKS].outgoing
    outgoing.timeout, outgoing.attempts, outgoing.backoff = 0.5, 3, 0.05

    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.sleep(3)
        return web.json_response({"text": "too late"})

    channel = await team_channel(server, "slow")
    key = await member(server, channel)
    async with Receiver(slow) as receiver:
        _, hook = await call(server, "POST", "/v1/hooks/outgoing", {"name": "Sloth", "url": receiver.url,
                                                                     "channel": channel})
        took, _ = await post(server, key, channel, "anyone there?")
        assert took < 0.4, took  # the post is answered without waiting for the receiver
        started = time.perf_counter()
        await outgoing.idle()
        gave_up = time.perf_counter() - started
    assert len(receiver.seen) == 3 and 1.4 < gave_up < 3.5, (len(receiver.seen), gave_up)  # 3 tries, bounded
    _, status = await call(server, "GET", f"/v1/hooks/{hook['id']}")
    assert status["last_error"]["status"] == "failed" and status["last_error"]["attempts"] == 3
    assert status["last_error"]["error"] == "no answer within 0.5 s"
    # The owner (the admin key's user) got a direct message from the hook's bot.
    _, channels = await call(server, "GET", "/v1/channels")
    direct = [c for c in channels["channels"] if c["kind"] == "direct" and hook["bot"] in c["name"]]
    assert len(direct) == 1
    [notice] = await messages(server, direct[0]["id"])
    assert notice["author"] == hook["bot"] and "could not deliver" in notice["content"]
    assert "no answer within 0.5 s" in notice["content"]
    assert [m["content"] for m in await messages(server, channel)] == ["anyone there?"]


async def test_a_4xx_is_not_retried_and_a_5xx_is(server: RunningServer) -> None:
    outgoing = server.app[HOOKS].outgoing
    outgoing.attempts, outgoing.backoff = 3, 0.05
    answers = iter([503, 200])

    async def flaky(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"text": "second time lucky"}, status=next(answers, 404))

    channel = await team_channel(server, "flaky")
    key = await member(server, channel)
    async with Receiver(flaky) as receiver:
        _, hook = await call(server, "POST", "/v1/hooks/outgoing", {"name": "Flaky", "url": receiver.url,
                                                                     "channel": channel})
        await post(server, key, channel, "one")
        await outgoing.idle()
        assert len(receiver.seen) == 2
        await post(server, key, channel, "two")
        await outgoing.idle()
        await asyncio.sleep(0.1)
        await outgoing.idle()
    assert len(receiver.seen) == 3  # the 404 was final
    _, status = await call(server, "GET", f"/v1/hooks/{hook['id']}")
    outcomes = sorted((d["status"], d["attempts"], d["error"]) for d in status["deliveries"])
    assert outcomes == [("failed", 1, "HTTP 404"), ("ok", 2, "")]
    contents = [m["content"] for m in await messages(server, channel)]
    assert contents == ["one", "second time lucky", "two"]


async def test_only_http_urls_and_by_default_only_public_addresses(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path / "data")) as server:
        channel = await team_channel(server, "guarded")
        for url in ("ftp://example.com/x", "file:///etc/passwd", "http://127.0.0.1:9/x", "http://[::1]/x",
                    "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/x", "https://user:pw@example.com/",
                    "not a url"):
            status, body = await call(server, "POST", "/v1/hooks/outgoing", {"name": "x", "url": url,
                                                                           "channel": channel})
            assert status == 400 and body["error"]["code"] == "invalid_field", (url, body)
        # A name is checked when it is resolved: localhost resolves to loopback only, so nothing is sent.
        outgoing = server.app[HOOKS].outgoing
        async with Receiver(lambda r, b: _ok()) as receiver:
            port = receiver.url.split(":")[2].split("/")[0]
            status, hook = await call(server, "POST", "/v1/hooks/outgoing", {
                "name": "sneaky", "url": f"http://localhost:{port}/hook", "channel": channel})
            assert status == 201
            await call(server, "POST", "/v1/messages", {"to": channel, "content": "secret plans"})
            await outgoing.idle()
        assert receiver.seen == []
        _, status_now = await call(server, "GET", f"/v1/hooks/{hook['id']}")
        assert status_now["last_error"]["attempts"] == 1 and "no public address" in status_now["last_error"]["error"]
        # Neither a channel nor trigger words: refused.
        status, body = await call(server, "POST", "/v1/hooks/outgoing", {"name": "x", "url": "https://example.com/"})
        assert status == 400 and body["error"]["code"] == "invalid_field"


async def test_trigger_words_alone_listen_in_team_channels_only(server: RunningServer) -> None:
    team = await team_channel(server, "anywhere")
    key = await member(server, team)
    status, group = await call(server, "POST", "/v1/channels", {"kind": "group", "members": ["mia"]}, key=key)
    assert status == 201
    async with Receiver(pong) as receiver:
        status, hook = await call(server, "POST", "/v1/hooks/outgoing",
                                  {"name": "Anywhere", "url": receiver.url, "trigger_words": ["!deploy", "!ship"]})
        assert status == 201 and hook["channel"] is None
        await post(server, key, group["id"], "!deploy secrets")  # a private group: not the hook owner's to read
        await post(server, key, team, "!ship web")
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        await server.app[HOOKS].outgoing.idle()
    assert [json.loads(s.body)["trigger_word"] for s in receiver.seen] == ["!ship"]
    # The reply lands in the team channel; the hook's bot joined it to answer.
    assert [(m["author"], m["content"]) for m in await messages(server, team)][-1] == (hook["bot"], "deploying web")


async def test_a_deactivated_owners_outgoing_hook_sends_nothing(server: RunningServer) -> None:
    await call(server, "POST", "/v1/users", {"login": "ops", "role": "admin"})
    _, minted = await call(server, "POST", "/v1/users/ops/tokens", {"ttl": 3600})
    channel = await team_channel(server, "after-hours")
    key = await member(server, channel)
    await call(server, "POST", f"/v1/channels/{channel}/members", {"add": ["ops"]})
    async with Receiver(lambda r, b: _ok()) as receiver:
        status, _ = await call(server, "POST", "/v1/hooks/outgoing", {"name": "Ops", "url": receiver.url,
                                                                        "channel": channel}, key=minted["token"])
        assert status == 201
        await post(server, key, channel, "while ops is here")
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        await call(server, "POST", "/v1/users/ops/deactivate")
        await asyncio.sleep(1.1)  # outgoing hooks read their owner's account at most once a second
        await post(server, key, channel, "after ops left")
        await server.app[HOOKS].outgoing.idle()
    assert [json.loads(s.body)["text"] for s in receiver.seen] == ["while ops is here"]
