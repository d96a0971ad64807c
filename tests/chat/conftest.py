"""Chat fixtures: a real redis-server on a free port (the shared event bus), and a real aiohttp server
with the chat sidecar on either store backend (embedded SQLite, or a real PostgreSQL: tests/postgres.py)."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from chat.config import ChatConfig
from chat.web import CHAT_API, ChatApi, setup_chat
from common.config import Config
from common.wire import error_middleware


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(10)


def start_redis(directory: Path, port: int | None = None) -> RedisServer:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed (scripts/bootstrap.sh --test installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--appendfsync", "always", "--dir", str(directory), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return RedisServer(port, directory, proc)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@dataclass
class ChatServer:
    """A running server plus helpers to act as different people."""

    url: str
    api: ChatApi
    admin_key: str
    session: aiohttp.ClientSession
    backend: str
    app: web.Application

    def api_routes(self) -> list[tuple[str, str]]:
        out = []
        for route in self.app.router.routes():
            path = route.resource.canonical if route.resource is not None else ""
            if path.startswith("/v1/") and route.method in ("GET", "POST", "PATCH", "DELETE") and route.handler.__self__ is self.api:  # type: ignore[union-attr]
                out.append((route.method, path))
        return out

    def token(self, login: str) -> str:
        return self.api.auth.mint_user_token(login, 3600)

    async def user(self, login: str, role: str = "member", department: str = "") -> str:
        await self.api.service.add_user(None, login, role, department)
        return self.token(login)

    async def call(self, method: str, path: str, token: str | None = None, json: Any = None,
                   data: Any = None, headers: dict[str, str] | None = None, expect: int | None = None) -> Any:
        h = dict(headers or {})
        h["Authorization"] = f"Bearer {token or self.admin_key}"
        async with self.session.request(method, self.url + path, json=json, data=data, headers=h) as resp:
            body = await resp.json(content_type=None) if resp.content_type == "application/json" else await resp.read()
            if expect is not None:
                assert resp.status == expect, (resp.status, body)
            return body


async def start_chat_server(tmp: Path, redis_url: str | None, database_url: str | None = None,
                            **overrides: Any) -> tuple[web.AppRunner, ChatServer]:
    data = tmp / "data"
    config = Config(host="127.0.0.1", port=0, data_dir=data, redis_url=redis_url, database_url=database_url)
    chat_config = ChatConfig(data_dir=data, redis_url=redis_url, redis_prefix=f"t{secrets.token_hex(4)}:",
                             database_url=database_url, **overrides)
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    setup_chat(app, config, chat_config)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    _, key = await app[CHAT_API].auth.keys.create("ops", "admin")
    session = aiohttp.ClientSession()
    return runner, ChatServer(f"http://127.0.0.1:{port}", app[CHAT_API], key, session,
                              "postgres" if database_url else "sqlite", app)


def database_for(request: pytest.FixtureRequest) -> str | None:
    """The store a parametrised fixture runs on: None (SQLite in the data dir) or a fresh PostgreSQL database."""
    return request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None


@pytest.fixture(params=["sqlite", "postgres"])
async def chat(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatServer]:
    overrides = getattr(request, "param_overrides", {})
    runner, server = await start_chat_server(tmp_path, None, database_for(request), **overrides)
    try:
        yield server
    finally:
        await server.session.close()
        await runner.cleanup()


@pytest.fixture
async def sqlite_chat(tmp_path: Path) -> AsyncIterator[ChatServer]:
    runner, server = await start_chat_server(tmp_path, None)
    try:
        yield server
    finally:
        await server.session.close()
        await runner.cleanup()


CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check"]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A plain headless Debian Chromium for the chat page tests (no media: see tests/browser for meetings)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()
