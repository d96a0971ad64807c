"""Credentials stay out of URLs: the live socket authenticates in its first frame, downloads take the
Authorization header or a short-lived link signed for one file, and `?token=` is refused everywhere."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from chat.auth import CHAT_ROOM
from identity.secrets_store import load_or_create_secret
from identity.tokens import TokenIssuer
from tests.chat.conftest import ChatServer
from tests.chat.test_bad_input import PNG, upload


async def first_frames(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> list[aiohttp.WSMessage]:
    """Everything the server sends until it closes the socket."""
    frames = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        frames.append(msg)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return frames


async def refused_with(chat: ChatServer, first: str) -> tuple[dict[str, Any], int | None]:
    """Sends `first` as the socket's first frame; returns the error frame and the close code."""
    ws = await chat.session.ws_connect(chat.url + "/v1/chat/ws")
    await ws.send_str(first)
    frames = await first_frames(ws)
    assert [f.type for f in frames] == [aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.CLOSE], frames
    await ws.close()
    return json.loads(frames[0].data), ws.close_code


async def test_socket_authenticates_in_its_first_frame(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    ann = await chat.user("ann")
    ws = await chat.session.ws_connect(chat.url + "/v1/chat/ws")
    await ws.send_json({"type": "auth", "token": ann})
    hello = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
    assert hello["type"] == "hello" and hello["user"]["login"] == "ann"
    await ws.close()
    # API keys work the same way (bots).
    ws = await chat.session.ws_connect(chat.url + "/v1/chat/ws")
    await ws.send_json({"type": "auth", "token": chat.admin_key})
    assert json.loads((await asyncio.wait_for(ws.receive(), 5)).data)["user"]["login"] == "ops"
    await ws.close()


async def test_socket_refuses_bad_credentials_with_an_error_then_4401(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    await chat.user("ann")
    issuer = TokenIssuer(load_or_create_secret(chat.api.config.data_dir))
    # A user token for a minute, minted a minute and a half ago.
    expired = issuer.mint(CHAT_ROOM, "ann", name="ann", ttl_seconds=60, now=time.time() - 90)
    cases = [
        (json.dumps({"type": "auth", "token": "eyJhbGciOiJIUzI1NiJ9.e30.forged"}), "invalid_token"),
        (json.dumps({"type": "auth", "token": expired}), "token_expired"),
        (json.dumps({"type": "auth", "token": "cvk_nope_nope"}), "unauthorized"),
        (json.dumps({"type": "ping"}), "unauthorized"),
        (json.dumps({"type": "auth"}), "unauthorized"),
        (json.dumps({"type": "auth", "token": "x", "password": "y"}), "bad_request"),
        (json.dumps({"type": "auth", "token": chat.token("ann"), "last_seq": "4"}), "invalid_field"),
        ("{not json", "malformed_json"),
    ]
    for first, code in cases:
        error, close_code = await refused_with(chat, first)
        assert error["type"] == "error" and error["error"]["code"] == code, (first, error)
        assert close_code == 4401, (first, close_code)


async def test_token_in_the_socket_url_is_refused(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    ann = await chat.user("ann")
    async with chat.session.get(chat.url + f"/v1/chat/ws?token={ann}",
                                headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                         "Sec-WebSocket-Version": "13",
                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "token_in_url"


async def test_socket_from_another_origin_is_refused(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    for origin, allowed in (("https://evil.example", False), ("null", False), (chat.url, True)):
        try:
            ws = await chat.session.ws_connect(chat.url + "/v1/chat/ws", headers={"Origin": origin})
        except aiohttp.WSServerHandshakeError as exc:
            assert not allowed and exc.status == 403, (origin, exc)
            continue
        assert allowed, origin
        await ws.close()
    async with chat.session.get(chat.url + "/v1/chat/ws", headers={
            "Origin": "https://evil.example", "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "origin_refused"


async def shared_file(chat: ChatServer) -> tuple[str, str, str, str]:
    """ann posts chart.png in a channel bob is in; carol is in none. Returns their tokens and the file id."""
    ann = await chat.user("ann")
    bob = await chat.user("bob")
    carol = await chat.user("carol")
    await chat.call("POST", "/v1/channels", ann, {"name": "t", "kind": "team", "members": ["bob"]}, expect=201)
    f = (await upload(chat, ann, "chart.png", PNG, "image/png"))["file"]
    await chat.call("POST", "/v1/messages", ann, {"to": "t", "type": "file",  # type: ignore[index]
                                                  "attachments": [{"type": "file", "file_id": f["id"]}]}, expect=201)
    return ann, bob, carol, str(f["id"])  # type: ignore[index]


async def get(chat: ChatServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with chat.session.get(chat.url + path, headers=headers or {}) as r:
        return r.status, await r.read()


async def test_download_with_header_and_never_with_token_in_url(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    _, bob, carol, fid = await shared_file(chat)
    assert await get(chat, f"/v1/files/{fid}", {"Authorization": f"Bearer {bob}"}) == (200, PNG)
    status, body = await get(chat, f"/v1/files/{fid}?token={bob}")
    assert status == 400 and json.loads(body)["error"]["code"] == "token_in_url"
    # Even with a good header: the URL is what gets logged.
    status, body = await get(chat, f"/v1/files/{fid}?token={bob}", {"Authorization": f"Bearer {bob}"})
    assert status == 400
    status, body = await get(chat, f"/v1/files/{fid}")
    assert status == 401
    assert (await get(chat, f"/v1/files/{fid}", {"Authorization": f"Bearer {carol}"}))[0] == 404


async def test_signed_link_opens_one_file_until_it_expires(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    ann, bob, carol, fid = await shared_file(chat)
    other = (await upload(chat, ann, "other.png", PNG + b"2", "image/png"))["file"]["id"]  # type: ignore[index]
    link = await chat.call("POST", f"/v1/files/{fid}/link", bob, expect=200)
    url, expires = link["url"], link["expires"]
    assert url.startswith(f"/v1/files/{fid}?expires={expires}&sig=") and "token" not in url
    assert bob not in url and time.time() + 200 < expires <= time.time() + 310
    assert await get(chat, url) == (200, PNG)  # no credential needed

    # Bound to its file: the same expires & sig on another file's path is refused.
    status, body = await get(chat, url.replace(fid, str(other)))
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_link"
    # Bound to its expiry: a later one with the same signature is refused.
    status, body = await get(chat, url.replace(f"expires={expires}", f"expires={expires + 3600}"))
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_link"
    status, body = await get(chat, url[:-4] + "0000")
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_link"
    for bad in (f"/v1/files/{fid}?expires=soon&sig=00", f"/v1/files/{fid}?sig=" + "0" * 64,
                f"/v1/files/{fid}?expires=1&sig=zz"):
        status, body = await get(chat, bad)
        assert status == 401 and json.loads(body)["error"]["code"] == "invalid_link", bad

    # A link the server made five minutes and a second ago has expired; one made 4 minutes ago has not.
    old_url, _ = chat.api.links.url(fid, now=time.time() - 301)
    status, body = await get(chat, old_url)
    assert status == 401 and json.loads(body)["error"]["code"] == "link_expired"
    recent_url, _ = chat.api.links.url(fid, now=time.time() - 240)
    assert await get(chat, recent_url) == (200, PNG)

    # Only someone who may read the file gets a link.
    missing = await chat.call("POST", f"/v1/files/{fid}/link", carol, expect=404)
    assert missing["error"]["code"] == "file_not_found"
    assert (await chat.call("POST", f"/v1/files/{fid}/link", ann, expect=200))["url"].startswith(f"/v1/files/{fid}?")
    async with chat.session.post(chat.url + f"/v1/files/{fid}/link") as r:
        assert r.status == 401


async def test_user_token_link_has_the_token_in_its_fragment(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    await chat.user("ann")
    made = await chat.call("POST", "/v1/users/ann/tokens", None, {"ttl": 3600}, expect=201)
    assert made["url"] == f"/chat#token={made['token']}"
