"""No secrets in URLs or logs, and no WebSockets for other sites' pages (issue #8): tokens are refused in
socket URLs, the chat socket must authenticate in time, browsers from foreign origins get 403 before the
upgrade, and the access log never shows a `token` or `sig` value."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling.access_log import redact_url
from tests.conftest import RunningServer, free_port, running_server, server_config

UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
SOCKETS = ("/v1/rooms/lobby/ws", "/v1/chat/ws")


async def handshake(url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any] | None]:
    """A raw upgrade request: the status, and the JSON error when refused."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={**UPGRADE, **headers}) as r:
            body = await r.json() if r.content_type == "application/json" else None
            return r.status, body


async def joined_with_origin(server: RunningServer, origin: str | None) -> dict[str, Any]:
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url.replace("http", "ws") + "/v1/rooms/lobby/ws", headers=headers) as ws:
            await ws.send_json({"type": "join", "token": await server.token("lobby", "alice")})
            while True:
                msg = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
                if msg["type"] in ("joined", "error"):
                    return msg  # type: ignore[no-any-return]


async def test_token_in_a_socket_url_is_refused(server: RunningServer) -> None:
    token = await server.token("lobby", "alice")
    for path in SOCKETS:
        status, body = await handshake(f"{server.url}{path}?token={token}", {})
        assert status == 400 and body is not None and body["error"]["code"] == "token_in_url", (path, body)


async def test_sockets_refuse_foreign_origins_before_the_upgrade(server: RunningServer) -> None:
    for path in SOCKETS:
        for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example", server.url + ".evil"):
            status, body = await handshake(server.url + path, {"Origin": origin})
            assert status == 403 and body is not None and body["error"]["code"] == "origin_refused", (path, origin)
        # Its own origin (as the browser spells it) and no Origin at all (bots) get the upgrade.
        for headers in ({"Origin": server.url}, {"Origin": server.url.upper() + "/"}, {}):
            status, _ = await handshake(server.url + path, headers)
            assert status == 101, (path, headers)
    assert (await joined_with_origin(server, server.url))["type"] == "joined"
    assert (await joined_with_origin(server, None))["type"] == "joined"


async def test_allowed_origins_and_public_url_are_trusted(tmp_path: Path) -> None:
    config = server_config(tmp_path / "data", allowed_origins=("https://intranet.example:8443",),
                           public_url="https://meet.example")
    async with running_server(config) as server:
        for path in SOCKETS:
            for origin in ("https://intranet.example:8443", "https://meet.example", "https://MEET.example:443"):
                status, _ = await handshake(server.url + path, {"Origin": origin})
                assert status == 101, (path, origin)
            for origin in ("https://intranet.example", "http://meet.example"):
                status, body = await handshake(server.url + path, {"Origin": origin})
                assert status == 403 and body is not None and body["error"]["code"] == "origin_refused"


async def test_chat_socket_without_an_auth_frame_in_time_is_closed_4401(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path / "data", ws_auth_timeout_seconds=0.5)) as server:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(server.url + "/v1/chat/ws")
            error = await asyncio.wait_for(ws.receive(), 5)
            assert json.loads(error.data)["error"]["code"] == "unauthorized"
            closing = await asyncio.wait_for(ws.receive(), 5)
            assert closing.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4401
            # In time, the same socket path works (and says hello).
            ws = await session.ws_connect(server.url + "/v1/chat/ws")
            await ws.send_json({"type": "auth", "token": server.api_key})
            assert json.loads((await asyncio.wait_for(ws.receive(), 5)).data)["type"] == "hello"
            await ws.close()


@pytest.fixture
def access_log() -> Iterator[list[str]]:
    """Every line the access logger writes while the test runs."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("aiohttp.access")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_access_log_redacts_token_and_sig_values(server: RunningServer, access_log: list[str]) -> None:
    token = await server.token("lobby", "alice")
    async with aiohttp.ClientSession() as session:
        for path in (f"/v1/files/f_x?token={token}", f"/r/lobby?token={token}&x=1",
                     "/v1/files/f_x?expires=1&sig=deadbeefcafe", f"/v1/me?%74oken={server.api_key}"):
            async with session.get(server.url + path, headers={"Referer": f"{server.url}/r/lobby?token={token}"}):
                pass
        await handshake(f"{server.url}/v1/chat/ws?token={token}", {})
    await asyncio.sleep(0.1)
    text = "\n".join(access_log)
    assert "/v1/files/f_x?token=[redacted] " in text and "/r/lobby?token=[redacted]&x=1 " in text
    assert "sig=[redacted]" in text and "/v1/chat/ws?token=[redacted]" in text
    assert token not in text and "deadbeefcafe" not in text and server.api_key not in text
    assert "eyJ" not in text and "cvk_" not in text
    assert f'"{server.url}/r/lobby?token=[redacted]"' in text  # the Referer too


def test_redact_url_keeps_everything_but_secret_values() -> None:
    assert redact_url("/a?x=1&y=2") == "/a?x=1&y=2"
    assert redact_url("/a") == "/a"
    assert redact_url("/a?Token=s&sig=t&access_token=u") == "/a?Token=[redacted]&sig=[redacted]&access_token=[redacted]"
    assert redact_url("/a?token") == "/a?token=[redacted]"
    assert redact_url("https://h/r/x#token=eyJ") == "https://h/r/x#[redacted]"
    assert redact_url("https://h/chat#ch_1") == "https://h/chat#ch_1"


ROOT = Path(__file__).resolve().parents[2]


def convene(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run([sys.executable, "-m", "signaling.cli", *args], cwd=ROOT, check=True, capture_output=True,
                         text=True, timeout=60, env={**os.environ, **(env or {})})
    return out.stdout.strip()


def test_cli_links_carry_the_token_in_the_fragment(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    link = convene("token", "standup", "--identity", "alice", "--data-dir", data, "--url", "https://meet.example")
    assert re.fullmatch(r"https://meet\.example/r/standup#token=eyJ[\w.-]+", link), link
    convene("users", "add", "ann", "--role", "member", "--data-dir", data)
    link = convene("users", "token", "ann", "--data-dir", data, "--url", "https://meet.example")
    assert re.fullmatch(r"https://meet\.example/chat#token=eyJ[\w.-]+", link), link


@pytest.mark.slow
async def test_convene_serve_redacts_its_access_log_and_takes_allowed_origins(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CONVENE_ALLOWED_ORIGINS": "https://env.example"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "signaling.cli", "serve", "--port", str(port), "--data-dir",
                                 str(tmp_path / "data"), "--no-captions", "--allowed-origins",
                                 "https://flag.example, https://other.example:8443"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(url + "/v1/openapi.json") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert proc.poll() is None, log.read_text()
                await asyncio.sleep(0.1)
            async with session.get(url + "/v1/files/f_x?token=eyJsecret.part.two&sig=abc123") as r:
                assert r.status == 400
        # The flag wins over the environment (as for every other setting).
        for origin, status in (("https://flag.example", 101), ("https://other.example:8443", 101),
                               ("https://env.example", 403), ("https://evil.example", 403)):
            assert (await handshake(url + "/v1/chat/ws", {"Origin": origin}))[0] == status, origin
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "GET /v1/files/f_x?token=[redacted]&sig=[redacted] HTTP/1.1\" 400" in text, text
    assert "eyJ" not in text and "abc123" not in text


def test_allowed_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from common.config import config_from_env

    monkeypatch.setenv("CONVENE_ALLOWED_ORIGINS", "https://a.example, https://b.example:8443/,")
    assert config_from_env().allowed_origins == ("https://a.example", "https://b.example:8443")
    assert config_from_env(allowed_origins=("https://c.example",)).allowed_origins == ("https://c.example",)
    monkeypatch.delenv("CONVENE_ALLOWED_ORIGINS")
    assert config_from_env().allowed_origins == ()
