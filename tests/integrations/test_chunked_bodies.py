"""Bodies that arrive in several chunks are read whole, and the size cap holds (common/http_body.read_capped).

A loopback receiver writes its answer in pieces with pauses between them, so the client's buffer holds only the
first piece when a single `content.read(n)` would return."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from common.http_body import BodyTooLarge, read_capped
from integrations.outbound import MAX_ANSWER_BYTES, IntegrationFailed, Outbound


async def _chunked(request: web.Request) -> web.StreamResponse:
    pieces, size = int(request.query["pieces"]), int(request.query["size"])
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    for i in range(pieces):
        await resp.write(bytes([65 + i]) * size)
        await resp.drain()
        await asyncio.sleep(0.05)
    await resp.write_eof()
    return resp


@pytest.fixture
async def receiver() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/", _chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_read_capped_reads_every_chunk(receiver: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(receiver, params={"pieces": "4", "size": "3000"}) as resp:
            body = await read_capped(resp, 12000)
    assert body == b"A" * 3000 + b"B" * 3000 + b"C" * 3000 + b"D" * 3000


async def test_read_capped_refuses_one_byte_over(receiver: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(receiver, params={"pieces": "4", "size": "3000"}) as resp:
            with pytest.raises(BodyTooLarge):
                await read_capped(resp, 11999)


async def test_outbound_reads_a_multi_chunk_answer_whole(receiver: str) -> None:
    outbound = Outbound(allow_private=True)
    await outbound.start()
    try:
        answer = await outbound.post(f"{receiver}?pieces=3&size=5000", "secret", b"{}", "application/json")
        assert len(answer.body) == 15000 and answer.body.endswith(b"C" * 5000)
        size = MAX_ANSWER_BYTES // 4 + 1  # four pieces: one byte over the cap in all, none over it alone
        with pytest.raises(IntegrationFailed):
            await outbound.post(f"{receiver}?pieces=4&size={size}", "secret", b"{}", "application/json")
    finally:
        await outbound.close()
