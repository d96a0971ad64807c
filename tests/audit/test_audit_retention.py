"""Audit rows are exempt from message retention: the retention job recalls old messages and leaves every audit
row (older than its cutoff too) as it was, the chain intact."""

from __future__ import annotations

import time

import aiohttp

from audit.log import AuditLog
from audit.verify import verify_log
from chat.web import CHAT
from identity.appkeys import DATABASE
from tests.conftest import RunningServer


async def all_rows(log: AuditLog) -> list[tuple[int, str, str]]:
    return [(r.seq, r.event, r.hash) async for rows in log.rows() for r in rows]


async def test_retention_recalls_messages_and_leaves_the_audit_log_alone(server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(server.url + "/v1/channels", json={"name": "old-news", "kind": "team"}) as r:
            channel = (await r.json())["id"]
        for n in range(5):
            async with http.post(server.url + "/v1/messages", json={"to": channel, "content": f"note {n}"}) as r:
                assert r.status == 201
        async with http.post(server.url + "/v1/messages", json={"to": channel, "content": "gone"}) as r:
            recalled = (await r.json())["id"]
        async with http.delete(server.url + f"/v1/messages/{recalled}") as r:
            assert r.status == 200
        async with http.patch(server.url + "/v1/org", json={"retention_days": 1}) as r:
            assert r.status == 200
    log = AuditLog(server.app[DATABASE])
    before = await all_rows(log)
    assert any('"message.recall"' in event for _, event, _ in before)

    # Three days on: every message and every audit row is past the one-day cutoff.
    purged = await server.app[CHAT].apply_retention(time.time() + 3 * 86400)
    assert purged == 5
    assert await all_rows(log) == before  # nothing deleted, edited or added per recalled message
    verdict = await verify_log(log)
    assert verdict.ok and verdict.rows == len(before)
