"""The hooks' store on PostgreSQL: a Git redelivery is refused by the delivery key there too, and outgoing
outcomes are written in batches (claimed rows updated, unclaimed ones inserted)."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import aiohttp
from aiohttp import web

from integrations.hooks_web import HOOKS
from tests.conftest import running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, messages, team_channel
from tests.postgres import PostgresServer


async def _fail(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.Response(status=400)


async def test_dedupe_and_outcomes_on_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    config = server_config(tmp_path / "data", database_url=postgres.create_database(), hooks_allow_private=True)
    async with running_server(config) as server, Receiver(_fail) as receiver:
        channel = await team_channel(server, "pg")
        _, git = await call(server, "POST", "/v1/hooks/github", {"channel": channel, "name": "pg"})
        body = json.dumps({"action": "opened", "issue": {"number": 1, "title": "On PostgreSQL"},
                           "repository": {"full_name": "a/b"}, "sender": {"login": "x"}}).encode()
        headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "pg-1", "Content-Type": "application/json",
                   "X-Hub-Signature-256": "sha256=" + hmac.new(git["secret"].encode(), body, hashlib.sha256).hexdigest()}
        async with aiohttp.ClientSession() as http:
            for want in ({"ok": True, "posted": True}, {"ok": True, "posted": False, "duplicate": True}):
                async with http.post(git["url"], data=body, headers=headers) as r:
                    assert (r.status, await r.json()) == (200, want)
        _, out = await call(server, "POST", "/v1/hooks/outgoing", {"name": "o", "url": receiver.url, "channel": channel})
        outgoing = server.app[HOOKS].outgoing
        for text in ("one", "two"):
            await call(server, "POST", "/v1/messages", {"to": channel, "content": text})
        await outgoing.idle()
        outgoing.shared = True  # as with a Redis bus: claimed first, then updated
        await call(server, "POST", "/v1/messages", {"to": channel, "content": "three"})
        await outgoing.idle()
        _, status = await call(server, "GET", f"/v1/hooks/{out['id']}")
        assert sorted((d["status"], d["error"]) for d in status["deliveries"]) == [("failed", "HTTP 400")] * 3
        assert len(receiver.seen) == 3
        assert len(await messages(server, channel)) == 4
