"""Shared fixtures: a real Convene server on a free 127.0.0.1 port, with a fresh data dir."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from signaling.access_log import RedactingAccessLogger
from signaling.app import create_app
from signaling.appkeys import API_KEYS, MEETINGS, TOKENS
from common.config import Config
from identity.tokens import Grants
from tests.postgres import PostgresServer, start_postgres


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

    async def token(self, room: str, identity: str, name: str | None = None, **grants: bool) -> str:
        return await meeting_token(self.app, room, identity, name=name or identity.title(), grants=Grants(**grants))


async def meeting_token(app: web.Application, room: str, identity: str, name: str = "", grants: Grants | None = None,
                  ttl_seconds: int = 6 * 3600, now: float | None = None) -> str:
    """A token for the room's live meeting on this server (started, open to guests, when it has none)."""
    meeting, _ = await app[MEETINGS].live_or_start(room, guests=True)
    return app[TOKENS].mint(room, identity, name=name, grants=grants, ttl_seconds=ttl_seconds, now=now,
                            meeting=meeting.meeting_id)


@asynccontextmanager
async def running_server(config: Config) -> AsyncIterator[RunningServer]:
    """A real Convene server for `config` on its host and port, with an admin API key, until exit."""
    app = create_app(config)
    # The access logger `convene serve` uses: tests that read the log see what production writes.
    runner = web.AppRunner(app, shutdown_timeout=2, access_log_class=RedactingAccessLogger)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    _, api_key = await app[API_KEYS].create("tests", "admin")
    try:
        yield RunningServer(app=app, url=f"http://{config.host}:{config.port}", data_dir=config.data_dir,
                            api_key=api_key)
    finally:
        await runner.cleanup()


def server_config(data_dir: Path, **overrides: object) -> Config:
    # Captions start off here (no model load per test); caption tests create their rooms with them on.
    values: dict[str, object] = {"host": "127.0.0.1", "port": free_port(), "data_dir": data_dir,
                                 "captions_default": False, **overrides}
    return Config(**values)  # type: ignore[arg-type]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(server_config(tmp_path / "data")) as running:
        yield running


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole session (tests/postgres.py); use `postgres.create_database()`."""
    server = start_postgres()
    yield server
    server.stop()
