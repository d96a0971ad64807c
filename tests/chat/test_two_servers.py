"""Two `convene serve` processes on one PostgreSQL (and one Redis bus): posts to both appear in one order
to a client of each, and a post retried on the other server with the same client_id is stored once."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chat.conftest import RedisServer, free_port
from tests.chat.test_crash import convene, start_server
from tests.postgres import PostgresServer


async def _history(s: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        async with s.get(url + f"/v1/channels/both/messages?after={after}&limit=500") as r:
            assert r.status == 200, await r.text()
            page = (await r.json())["messages"]
        if not page:
            return out
        out.extend(page)
        after = page[-1]["ord"]


@pytest.mark.slow
async def test_two_servers_one_postgres(tmp_path: Path, postgres: PostgresServer, redis_server: RedisServer) -> None:
    data = tmp_path / "data"
    db = postgres.create_database()
    key = convene("keys", "create", "--name", "poster", "--role", "bot", "--data-dir", str(data), "--database-url", db)
    convene("users", "add", "reader", "--role", "member", "--data-dir", str(data), "--database-url", db)
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            procs.append(await start_server(port, data, db, redis_server.url))
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as s:
            async with s.post(a + "/v1/channels", json={"name": "both", "kind": "group", "members": ["reader"]}) as r:
                assert r.status == 201, await r.text()

            async def post(url: str, content: str, client_id: str | None = None) -> dict[str, Any]:
                body = {"to": "both", "content": content, **({"client_id": client_id} if client_id else {})}
                async with s.post(url + "/v1/messages", json=body) as r:
                    assert r.status in (200, 201), await r.text()
                    return dict(await r.json())

            # Interleaved and concurrent: each server's writes race the other's for the counter.
            sent = await asyncio.gather(*(post(a if i % 2 else b, f"m{i}") for i in range(200)))
            # One post retried on the other server (a client that lost the first answer), at once and after.
            retried = await asyncio.gather(post(a, "once", "retry-1"), post(b, "once", "retry-1"))
            again = await post(b, "once", "retry-1")
            assert retried[0]["id"] == retried[1]["id"] == again["id"]

        reader = convene("users", "token", "reader", "--data-dir", str(data), "--database-url", db)
        headers = {"Authorization": f"Bearer {reader.split('token=')[1]}"}
        async with aiohttp.ClientSession(headers=headers) as s:
            seen_a, seen_b = await _history(s, a), await _history(s, b)
        ids_a = [m["id"] for m in seen_a]
        assert ids_a == [m["id"] for m in seen_b]  # one order, whichever server a client asks
        assert set(ids_a) >= {m["id"] for m in sent}
        assert [m["content"] for m in seen_a].count("once") == 1
        ords = [m["ord"] for m in seen_a]
        assert ords == sorted(ords) and len(set(ords)) == len(ords)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)
