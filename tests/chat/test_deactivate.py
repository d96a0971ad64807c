"""Deactivation ends access (SQLite and a real PostgreSQL): POST /v1/users/{login}/deactivate and `convene users
disable` close the user's live chat sockets within 1 s (close code 4410), and their old user token and sign-in
session fail on the next request, while other users carry on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.chat.conftest import ChatServer
from tests.chat.test_live import connect, recv

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


async def closed_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> tuple[int | None, float]:
    start = time.monotonic()
    while True:
        msg = await asyncio.wait_for(ws.receive(), seconds)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            # A CLOSE frame carries the server's code in `data` (close_code is set only once the client answers).
            return msg.data if msg.type == aiohttp.WSMsgType.CLOSE else ws.close_code, time.monotonic() - start


async def signed_in(chat: ChatServer, http: aiohttp.ClientSession, login: str) -> dict[str, str]:
    await chat.api.service.add_user(None, login, "member")
    assert chat.api.accounts is not None
    await chat.api.accounts.set_password(login, PASSWORD)
    async with http.post(chat.url + "/v1/auth/login", json={"login": login, "password": PASSWORD}) as r:
        assert r.status == 200
        body: dict[str, str] = await r.json()
        return body


async def test_deactivating_closes_sockets_and_fails_tokens_and_sessions(chat: ChatServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        session = await signed_in(chat, http, "gina")
        minted = await chat.call("POST", "/v1/users/gina/tokens", json={"ttl": 3600}, expect=201)
        bystander = await chat.user("hal")
        sockets = [await connect(chat, session["token"]), await connect(chat, minted["token"]),
                   await connect(chat, bystander)]
        for ws in sockets:
            await recv(ws, "hello")

        answer = await chat.call("POST", "/v1/users/gina/deactivate", expect=200)
        assert answer == {"login": "gina", "active": False, "sockets_closed": 2}
        for ws in sockets[:2]:
            code, took = await closed_within(ws, 1.0)
            assert code == 4410 and took < 1.0
        # The bystander's socket stays open and answers.
        await sockets[2].send_json({"type": "ping", "id": 1})
        assert (await recv(sockets[2], "pong"))["id"] == 1

        for token in (session["token"], minted["token"]):
            got = await chat.call("GET", "/v1/me", token, expect=401)
            assert got["error"]["code"] == "token_revoked"
        async with http.get(chat.url + "/v1/me") as r:  # the session cookie
            assert r.status == 401 and (await r.json())["error"]["code"] == "token_revoked"
        again = await connect(chat, minted["token"])
        assert (await recv(again, "error"))["error"]["code"] == "token_revoked"
        async with http.post(chat.url + "/v1/auth/login", json={"login": "gina", "password": PASSWORD}) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "invalid_credentials"
        for ws in [*sockets, again]:
            await ws.close()


async def test_only_admins_deactivate_and_not_themselves(chat: ChatServer) -> None:
    member = await chat.user("ivy")
    await chat.user("jon")
    refused = await chat.call("POST", "/v1/users/jon/deactivate", member, expect=403)
    assert refused["error"]["code"] == "not_permitted"
    admin = await chat.user("kim", role="admin")
    assert (await chat.call("POST", "/v1/users/kim/deactivate", admin, expect=403))["error"]["code"] == "not_permitted"
    assert (await chat.call("POST", "/v1/users/ghost/deactivate", admin, expect=404))["error"]["code"]
    await chat.call("GET", "/v1/me", await chat.user("jon"), expect=200)  # nothing changed for jon


async def test_cli_disable_closes_a_live_socket_within_a_second(chat: ChatServer, tmp_path: Path) -> None:
    token = await chat.user("lee")
    ws = await connect(chat, token)
    await recv(ws, "hello")
    where = ["--data-dir", str(tmp_path / "data")]
    if chat.backend == "postgres":
        where += ["--database-url", chat.api.config.database_url or ""]
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "signaling.cli", "users", "disable", "lee",
                                                    *where], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "disabled lee (token epoch 1)" in done.stdout, done.stderr
    code, took = await closed_within(ws, 1.0)
    assert code == 4410 and took < 1.0
    assert (await chat.call("GET", "/v1/me", token, expect=401))["error"]["code"] == "token_revoked"
