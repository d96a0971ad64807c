"""The error log writes addresses as the access log does: an unexpected error on an incoming webhook's address,
whose last segment is its secret, must not put the secret in the log (common/wire.py, common/redact.py)."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web

from common.wire import error_middleware
from tests.conftest import free_port

SECRET = "s3cr3t-hook-secret-0123456789abcdef"


async def test_an_unexpected_error_logs_the_address_redacted(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/v1/hooks/incoming/{id}/{secret}", broken)
    app.router.add_get("/v1/files/{id}", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        with caplog.at_level(logging.ERROR, logger="convene.wire"):
            async with aiohttp.ClientSession() as http:
                async with http.post(f"http://127.0.0.1:{port}/v1/hooks/incoming/h1/{SECRET}", json={}) as resp:
                    assert resp.status == 500 and (await resp.json())["error"]["code"] == "internal_error"
                async with http.get(f"http://127.0.0.1:{port}/v1/files/f1?token={SECRET}&a=1") as resp:
                    assert resp.status == 500
    finally:
        await runner.cleanup()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/hooks/incoming/h1/[redacted]" in logged and "/v1/files/f1?token=[redacted]&a=1" in logged
    assert SECRET not in logged
