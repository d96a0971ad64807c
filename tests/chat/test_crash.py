"""Acknowledged messages survive a crash: SIGKILL `convene serve` in the middle of a stream of posts,
restart it, and find every message that got a 201 — on the embedded SQLite store and on a real
PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.chat.conftest import free_port
from tests.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def convene(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "signaling.cli", *args], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


async def start_server(port: int, data: Path, database_url: str | None,
                       redis_url: str | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "signaling.cli", "serve", "--port", str(port), "--data-dir", str(data)]
    if database_url:
        cmd += ["--database-url", database_url]
    if redis_url:
        cmd += ["--redis", redis_url]
    env = {**os.environ, "CONVENE_CHAT_RATE": "10000", "CONVENE_CHAT_BURST": "10000", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(f"http://127.0.0.1:{port}/v1/openapi.json") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            assert proc.poll() is None, "server exited"
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_acknowledged_posts_survive_sigkill(tmp_path: Path, backend: str,
                                                  request: pytest.FixtureRequest) -> None:
    data = tmp_path / "data"
    pg: PostgresServer | None = request.getfixturevalue("postgres") if backend == "postgres" else None
    database_url = pg.create_database() if pg else None
    extra = ["--database-url", database_url] if database_url else []
    key = convene("keys", "create", "--name", "loader", "--role", "bot", "--data-dir", str(data), *extra)
    convene("users", "add", "reader", "--role", "member", "--data-dir", str(data), *extra)
    port = free_port()
    proc = await start_server(port, data, database_url)
    url = f"http://127.0.0.1:{port}"
    acked: dict[str, str] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as s:
        async with s.post(url + "/v1/channels", json={"name": "stream", "kind": "group",
                                                     "members": ["reader"]}) as r:
            assert r.status == 201, await r.text()

        async def poster(worker: int) -> None:
            i = 0
            while True:
                cid = f"w{worker}-{i}"
                try:
                    async with s.post(url + "/v1/messages", json={"to": "stream", "content": cid,
                                                                 "client_id": cid}) as r:
                        if r.status == 201:
                            acked[cid] = (await r.json())["id"]
                except (TimeoutError, aiohttp.ClientError):
                    return
                i += 1

        tasks = [asyncio.create_task(poster(w)) for w in range(8)]
        while len(acked) < 300:
            await asyncio.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await asyncio.gather(*tasks)
    proc = await start_server(port, data, database_url)
    try:
        reader = convene("users", "token", "reader", "--data-dir", str(data), *extra).split("token=")[1]
        found: dict[str, str] = {}
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {reader}"}) as s:
            after = 0
            while True:
                async with s.get(url + f"/v1/channels/stream/messages?after={after}&limit=500") as r:
                    page = await r.json()
                for m in page["messages"]:
                    found[m["content"]] = m["id"]
                if not page["messages"]:
                    break
                after = page["messages"][-1]["ord"]
        missing = [c for c in acked if found.get(c) != acked[c]]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged messages lost: {missing[:5]}"
        assert len(acked) >= 300
    finally:
        proc.terminate()
        proc.wait(20)
