"""Shared fixtures: a real Convene server on a free 127.0.0.1 port, with a fresh data dir."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from signaling.app import create_app
from signaling.appkeys import API_KEYS, TOKENS
from signaling.config import Config
from signaling.tokens import Grants


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    app: web.Application
    url: str
    data_dir: Path
    api_key: str

    def token(self, room: str, identity: str, name: str | None = None, **grants: bool) -> str:
        return self.app[TOKENS].mint(room, identity, name=name or identity.title(), grants=Grants(**grants))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    port = free_port()
    # Captions start off here (no model load per test); caption tests create their rooms with them on.
    config = Config(host="127.0.0.1", port=port, data_dir=tmp_path / "data", captions_default=False)
    app = create_app(config)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    _, api_key = app[API_KEYS].create("tests", "admin")
    try:
        yield RunningServer(app=app, url=f"http://127.0.0.1:{port}", data_dir=config.data_dir, api_key=api_key)
    finally:
        await runner.cleanup()
