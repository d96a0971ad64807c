"""Nothing of a stopped server keeps running: a button click still waiting for its integration, and the audit
log's writer, are ended by the app's cleanup (before, they leaked into whatever ran next in the loop)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from aiohttp import web

from audit import AuditEvent, Recorder
from chat.web import CHAT_API
from store.database import Database
from tests.conftest import running_server, server_config
from tests.integrations.hooks_helpers import Receiver, call, team_channel
from tests.integrations.test_interactive import approval_request, make_bot
from tests.integrations.test_slash_commands import chat_socket


async def test_a_running_click_is_cancelled_at_shutdown(tmp_path: Path) -> None:
    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.sleep(2.5)  # within the 3 s an integration has: the click is still waiting at shutdown
        return web.json_response({"text": "late"})

    async with Receiver(slow) as receiver, aiohttp.ClientSession() as http:
        async with running_server(server_config(tmp_path, hooks_allow_private=True)) as server:
            chat = server.app[CHAT_API]
            channel = await team_channel(server, "approvals")
            bot = await make_bot(server, "expenses", channel)
            status, posted = await call(server, "POST", "/v1/interactive/messages",
                                        approval_request(channel, receiver.url), key=bot["key"])
            assert status == 201, posted
            ws = await chat_socket(http, server, server.api_key)
            await ws.send_str(json.dumps({"type": "action", "message_id": posted["id"], "action_id": "approve"}))
            await asyncio.wait_for(receiver.arrived.wait(), 5)
            clicks = list(chat._clicks)
            assert len(clicks) == 1
        assert not chat._clicks and clicks[0].done()


async def test_the_audit_writer_finishes_and_stops_on_close(tmp_path: Path) -> None:
    db = Database.for_config(None, tmp_path)
    await db.open()
    recorder = Recorder.on(db)
    try:
        appends = [asyncio.create_task(recorder.record(AuditEvent("test.append", "thing", str(i))))
                   for i in range(50)]
        await asyncio.sleep(0)  # queued, the writer started
        await recorder.close()
        seqs = await asyncio.gather(*appends)
        assert None not in seqs and len(set(seqs)) == 50, seqs
        leftover = [t for t in asyncio.all_tasks() if t.get_name() == "audit-append"]
        assert leftover == []
    finally:
        await db.close()
