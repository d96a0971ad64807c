"""Audit rows are exempt from message retention: the retention job deletes old messages and leaves every audit
row (older than its cutoff too) as it was, the chain intact; it adds one `retention.run` event with its counts."""

from __future__ import annotations

import time

import aiohttp

from audit.log import AuditLog
from audit.verify import verify_log
from chat.web import CHAT_API
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

    # Three days on: every message (the recalled one's tombstone too) and every audit row is past the cutoff.
    report = await server.app[CHAT_API].retention.run(time.time() + 3 * 86400)
    assert report.messages == 6
    after = await all_rows(log)
    assert after[:len(before)] == before  # nothing deleted or edited, nothing added per message
    assert [event for _, event, _ in after[len(before):]] == [
        next(e for _, e, _ in after[len(before):] if '"retention.run"' in e)]
    verdict = await verify_log(log)
    assert verdict.ok and verdict.rows == len(before) + 1
