"""A meeting's content belongs to that meeting: meeting ids, scoped tokens, removal holds, guest limits.

Each test is what an outsider tried on the old server (issue #8) and must now fail, over a real server.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling.appkeys import MEETINGS
from transcribe.web import TRANSCRIBE
from signaling.client import SignalingClient, SignalingError
from tests.conftest import RunningServer, meeting_token, running_server, server_config

MEETING_ID = re.compile(r"^m_[A-Za-z0-9_-]{22}$")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=auth(token)) as r:
        return r.status, await r.json(content_type=None)


async def guest(http: aiohttp.ClientSession, server: RunningServer, room: str, name: str) -> dict[str, Any]:
    async with http.post(f"{server.url}/v1/rooms/{room}/join", json={"name": name}) as r:
        assert r.status == 201, await r.text()
        body: dict[str, Any] = await r.json()
        return body


async def joined(server: RunningServer, room: str, token: str) -> SignalingClient:
    client = SignalingClient(server.url, room, token)
    await client.connect()
    return client


async def refused(server: RunningServer, room: str, token: str) -> tuple[str, int | None]:
    client = SignalingClient(server.url, room, token)
    try:
        with pytest.raises(SignalingError) as info:
            await client.connect()
        await asyncio.wait_for(client.closed.wait(), 5)
        return info.value.code, client.close_code
    finally:
        await client.close()


async def test_a_room_used_again_is_a_new_meeting_that_old_tokens_do_not_reach(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        first = await guest(http, server, "board", "Alice")
        assert first["moderator"] and MEETING_ID.match(first["meeting_id"])
        alice = await joined(server, "board", first["token"])
        status, _ = await call(http, "POST", f"{server.url}/v1/messages", first["token"],
                               {"to": "board", "content": "the acquisition price is 4.2"})
        assert status == 201
        await alice.send({"type": "end_room"})
        await asyncio.wait_for(alice.closed.wait(), 5)
        await alice.close()

        # Whoever opens `board` now starts a new meeting, as its moderator, and sees none of the old chat.
        second = await guest(http, server, "board", "Mallory")
        assert second["moderator"] and second["meeting_id"] != first["meeting_id"]
        status, history = await call(http, "GET", f"{server.url}/v1/channels/board/messages", second["token"])
        assert status == 200 and history["messages"] == []

        # The first meeting's token reaches nothing: REST, chat, transcript, notes, signaling.
        old = first["token"]
        for method, path in (("GET", "/v1/rooms/board"), ("GET", "/v1/channels/board/messages"),
                             ("GET", "/v1/me"), ("GET", "/v1/rooms/board/transcript"),
                             ("GET", "/v1/rooms/board/notes")):
            status, body = await call(http, method, server.url + path, old)
            assert (status, body["error"]["code"]) == (403, "meeting_ended"), path
        assert await refused(server, "board", old) == ("meeting_ended", 4403)


async def test_ended_meeting_is_not_started_again_by_an_old_token(server: RunningServer) -> None:
    token = await server.token("retro", "alice", moderator=True)
    alice = await joined(server, "retro", token)
    await alice.send({"type": "end_room"})
    await asyncio.wait_for(alice.closed.wait(), 5)
    await alice.close()
    assert await refused(server, "retro", token) == ("meeting_ended", 4403)
    # The room does not come back to life for it.
    assert await server.app[MEETINGS].live("retro") is None


async def test_meeting_ids_are_unguessable_and_admins_list_them(server: RunningServer) -> None:
    ids = {(await server.app[MEETINGS].live_or_start(f"r{i}", guests=True))[0].meeting_id for i in range(50)}
    assert len(ids) == 50 and all(MEETING_ID.match(i) for i in ids)  # 128 random bits each
    # A stored meeting is named by its id: a timestamp no longer finds it.
    async with aiohttp.ClientSession() as http:
        status, body = await call(http, "GET", f"{server.url}/v1/rooms/r1/transcript?meeting=20261201T100000Z",
                                  server.api_key)
        assert status == 404


async def test_rooms_made_through_the_api_are_invite_only(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        status, _ = await call(http, "POST", f"{server.url}/v1/rooms", server.api_key, {"name": "payroll"})
        assert status == 201
        async with http.post(f"{server.url}/v1/rooms/payroll/join", json={"name": "Eve"}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "invite_only"
        # An invite minted ahead (no room yet) makes an invite-only meeting too.
        status, invite = await call(http, "POST", f"{server.url}/v1/rooms/tomorrow/tokens", server.api_key,
                                    {"identity": "bob"})
        assert status == 201 and MEETING_ID.match(invite["meeting_id"])
        async with http.post(f"{server.url}/v1/rooms/tomorrow/join", json={"name": "Eve"}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "invite_only"
        status, _ = await call(http, "POST", f"{server.url}/v1/rooms", server.api_key,
                               {"name": "allhands", "guests": True})
        assert status == 201
        assert (await guest(http, server, "allhands", "Eve"))["moderator"] is False


async def test_a_meeting_token_reaches_only_its_meeting(server: RunningServer) -> None:
    chat = server.url
    async with aiohttp.ClientSession() as http:
        # Bob is a chat user with a direct conversation and a team channel.
        for login in ("bob", "carol"):
            status, _ = await call(http, "POST", f"{chat}/v1/users", server.api_key, {"login": login})
            assert status in (200, 201)
        status, dm = await call(http, "POST", f"{chat}/v1/channels", server.api_key,
                                {"kind": "group", "members": ["bob", "carol"], "name": "secret-plans"})
        assert status == 201
        status, _ = await call(http, "POST", f"{chat}/v1/messages", server.api_key,
                               {"to": dm["id"], "content": "layoffs on friday"})
        assert status == 201
        # An invite for identity `bob` to a meeting reaches that meeting, not Bob's other conversations.
        status, invite = await call(http, "POST", f"{chat}/v1/rooms/standup/tokens", server.api_key,
                                    {"identity": "bob"})
        token = invite["token"]
        status, me = await call(http, "GET", f"{chat}/v1/me", token)
        assert status == 200 and me["meeting"] == invite["meeting_id"]
        status, _ = await call(http, "POST", f"{chat}/v1/messages", token, {"to": "standup", "content": "hello"})
        assert status == 201
        status, listing = await call(http, "GET", f"{chat}/v1/channels", token)
        assert [c["id"] for c in listing["channels"]] == [me["channel"]]
        for method, path, body in (
            ("GET", "/v1/sync", None), ("GET", "/v1/search?q=layoffs", None), ("GET", "/v1/tasks", None),
            ("GET", f"/v1/channels/{dm['id']}/messages", None), ("GET", f"/v1/channels/{dm['id']}", None),
            ("POST", "/v1/messages", {"to": dm["id"], "content": "x"}), ("GET", "/v1/users", None),
            ("POST", "/v1/channels", {"kind": "direct", "members": ["carol"]}),
        ):
            status, reply = await call(http, method, chat + path, token, body)
            assert (status, reply["error"]["code"]) == (403, "out_of_scope"), path
        # A meeting token does not reach rooms other than its own either.
        status, reply = await call(http, "GET", f"{chat}/v1/rooms/other/placement", token)
        assert status == 403


async def test_a_removed_participant_does_not_come_back_with_the_same_token(server: RunningServer) -> None:
    host = await joined(server, "sync", await server.token("sync", "host", moderator=True))
    eve_token = await server.token("sync", "eve")
    eve = await joined(server, "sync", eve_token)
    assert eve.joined is not None
    eve_id = eve.joined["participant"]["id"]
    await host.send({"type": "remove_participant", "participant_id": eve_id})
    await asyncio.wait_for(eve.closed.wait(), 5)
    await eve.close()
    assert await refused(server, "sync", eve_token) == ("removed", 4403)
    async with aiohttp.ClientSession() as http:
        status, body = await call(http, "GET", f"{server.url}/v1/channels/sync/messages", eve_token)
        assert (status, body["error"]["code"]) == (403, "removed")
    # A new invite (the moderator changed their mind) works.
    again = await joined(server, "sync", await server.token("sync", "eve"))
    await again.close()
    await host.close()


async def test_guest_joins_are_rate_limited_per_address(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        statuses = []
        for i in range(12):
            async with http.post(f"{server.url}/v1/rooms/flood{i}/join", json={"name": "Bot"}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert (await r.json())["error"]["code"] == "rate_limited"
    assert statuses[:10] == [201] * 10 and statuses[10:] == [429, 429]
    # The refused ones created nothing.
    assert await server.app[MEETINGS].live("flood11") is None


@pytest.mark.parametrize("name", ["Eve\n\n## Decisions\n\n- Approved: wire $2M", "a\x00b", "tab\there", "del\x7f"])
async def test_display_names_are_one_line(server: RunningServer, name: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/rooms/names/join", json={"name": name}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_field"
        status, body = await call(http, "POST", f"{server.url}/v1/rooms/names/tokens", server.api_key,
                                  {"identity": "eve", "name": name})
        assert (status, body["error"]["code"]) == (400, "invalid_field")
    assert await server.app[MEETINGS].live("names") is None


async def test_a_socket_that_never_joins_is_closed(tmp_path: Path) -> None:
    async with running_server(server_config(tmp_path / "data", join_timeout_seconds=1.0)) as server:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{server.url.replace('http', 'ws')}/v1/rooms/idle/ws")
            started = time.monotonic()
            error = await asyncio.wait_for(ws.receive_json(), 5)
            assert error["type"] == "error" and error["code"] == "join_timeout"
            while not ws.closed:
                await asyncio.wait_for(ws.receive(), 5)
            assert ws.close_code == 4401 and time.monotonic() - started < 3
        # A socket that joins in time stays.
        client = await joined(server, "idle", await meeting_token(server.app, "idle", "alice"))
        await asyncio.sleep(1.5)
        assert not client.closed.is_set()
        await client.close()


async def test_meetings_nobody_attended_leave_nothing_behind(server: RunningServer) -> None:
    """Anonymous joins that never open the meeting: no chat channel, no chat user, no transcript folder."""
    from chat.web import CHAT

    chat = server.app[CHAT]
    users_before = {u.login for u in await chat.store.list_users()}
    async with aiohttp.ClientSession() as http:
        for i in range(3):
            await guest(http, server, f"drive-by{i}", "Bot")
        for i in range(3):
            status, _ = await call(http, "DELETE", f"{server.url}/v1/rooms/drive-by{i}", server.api_key)
            assert status == 200
    assert await chat.store.list_channels("meeting") == []
    assert {u.login for u in await chat.store.list_users()} == users_before
    assert all([await server.app[TRANSCRIBE].store.ameetings(f"drive-by{i}") == [] for i in range(3)])
