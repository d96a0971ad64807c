"""Scheduled posts across restarts and processes: posts scheduled on one `convene serve` that fell due while it
was down are sent once each after it comes back, although two server processes on the same store (one SQLite
file, or one PostgreSQL) race for them."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chat.conftest import free_port
from tests.chat.test_crash import convene, start_server

POSTS = 20


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_missed_posts_are_sent_once_by_two_processes(tmp_path: Path, backend: str,
                                                           request: pytest.FixtureRequest) -> None:
    data = tmp_path / "data"
    database_url = request.getfixturevalue("postgres").create_database() if backend == "postgres" else None
    extra = ["--database-url", database_url] if database_url else []
    key = convene("keys", "create", "--name", "reporter", "--role", "bot", "--data-dir", str(data), *extra)
    convene("users", "add", "reader", "--role", "member", "--data-dir", str(data), *extra)
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    headers = {"Authorization": f"Bearer {key}"}
    try:
        first = await start_server(ports[0], data, database_url)
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        async with aiohttp.ClientSession(headers=headers) as s:
            async with s.post(a + "/v1/channels", json={"name": "daily", "kind": "group", "members": ["reader"]}) as r:
                assert r.status == 201, await r.text()
                channel = (await r.json())["id"]
            due = datetime.now(UTC) + timedelta(seconds=3)
            ids = []
            for n in range(POSTS):
                async with s.post(a + "/v1/scheduled_posts", json={
                        "channel": channel, "text": f"report {n}", "at": due.isoformat()}) as r:
                    assert r.status == 201, await r.text()
                    ids.append((await r.json())["id"])
        first.terminate()  # down before they fall due
        first.wait(20)
        await asyncio.sleep(max(0.0, due.timestamp() - time.time()) + 0.5)

        procs = list(await asyncio.gather(*(start_server(port, data, database_url) for port in ports)))
        async with aiohttp.ClientSession(headers=headers) as s:
            deadline = time.monotonic() + 20
            while True:
                async with s.get(b + "/v1/scheduled_posts") as r:
                    posts: list[dict[str, Any]] = (await r.json())["scheduled_posts"]
                if all(p["status"] == "done" and p["last_run"] for p in posts):
                    break
                assert time.monotonic() < deadline, posts
                await asyncio.sleep(0.2)
            await asyncio.sleep(2.0)  # a second send would land by now (both read the due posts as they start)
            async with s.get(a + f"/v1/channels/{channel}/messages?limit=500") as r:
                messages = (await r.json())["messages"]
            histories = []
            for post_id in ids:
                async with s.get(a + f"/v1/scheduled_posts/{post_id}") as r:
                    histories.append((await r.json())["history"])
        contents = sorted(m["content"] for m in messages)
        assert contents == sorted(f"report {n}" for n in range(POSTS))  # each once
        assert all(len(h) == 1 and h[0]["outcome"] == "sent" for h in histories), histories
        assert {p["runs"] for p in posts} == {1}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
