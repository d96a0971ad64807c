"""The live socket: every event pushed with a per-connection seq; resume replays; old gaps fall back to sync.
Also the in-process service API other parts of the server use, and meeting tokens."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from identity.secrets_store import load_or_create_secret
from identity.tokens import USER_SCOPE, TokenIssuer
from tests.chat.conftest import ChatServer


async def connect(chat: ChatServer, token: str, session: str | None = None,
                  last_seq: int | None = None) -> aiohttp.ClientWebSocketResponse:
    """Opens the live socket and authenticates in its first frame (resuming `session` when given)."""
    ws = await chat.session.ws_connect(chat.url + "/v1/chat/ws")
    auth: dict[str, Any] = {"type": "auth", "token": token}
    if session is not None:
        auth.update(session=session, last_seq=last_seq)
    await ws.send_json(auth)
    return ws


async def recv(ws: aiohttp.ClientWebSocketResponse, kind: str | None = None, timeout: float = 5) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        frame: dict[str, Any] = json.loads(msg.data)
        if kind is None or frame["type"] == kind:
            return frame


async def test_live_events_resume_and_sync(chat: ChatServer) -> None:
    ann = await chat.user("ann")
    bob = await chat.user("bob")
    ch = await chat.call("POST", "/v1/channels", ann, {"name": "live", "kind": "team", "members": ["bob"]}, expect=201)
    ws = await connect(chat, bob)
    hello = await recv(ws)
    assert hello["type"] == "hello" and hello["resumed"] is False and hello["last_seq"] == 0
    m = await chat.call("POST", "/v1/messages", ann, {"to": "live", "content": "one"}, expect=201)
    ev = await recv(ws)
    assert ev["seq"] == 1 and ev["type"] == "message" and ev["message"]["id"] == m["id"]
    await chat.call("PATCH", f"/v1/messages/{m['id']}", ann, {"content": "uno"}, expect=200)
    await chat.call("POST", f"/v1/messages/{m['id']}/reactions", ann, {"emoji": "🎉"}, expect=200)
    kinds = [(await recv(ws))["type"] for _ in range(2)]
    assert kinds == ["edit", "reaction"]
    ann_ws = await connect(chat, ann)
    await recv(ann_ws, "hello")
    await ann_ws.send_json({"type": "typing", "channel": ch["id"]})
    typing = await recv(ws)
    assert typing["type"] == "typing" and typing["user"] == "ann" and typing["seq"] == 4
    await ws.close()

    # Missed while away: replayed with the same numbers on resume.
    await chat.call("DELETE", f"/v1/messages/{m['id']}", ann, expect=200)
    t = await chat.call("POST", "/v1/messages", ann, {"to": "live", "type": "task",
                                                      "task": {"title": "ship", "assignee": "bob"}}, expect=201)
    await chat.call("PATCH", f"/v1/tasks/{t['id']}", bob, {"status": "done"}, expect=200)
    ws = await connect(chat, bob, hello["session"], 4)
    again = await recv(ws)
    assert again["resumed"] is True and again["session"] == hello["session"]
    replay = [await recv(ws) for _ in range(3)]
    assert [(f["seq"], f["type"]) for f in replay] == [(5, "recall"), (6, "message"), (7, "task")]
    assert replay[0]["message"]["deleted"] is True
    await ws.close()

    # A gap older than the replay buffer (or an unknown session): resumed false, then GET /v1/sync.
    ws = await connect(chat, bob, "s_unknown", 2)
    fresh = await recv(ws)
    assert fresh["resumed"] is False and fresh["session"] != hello["session"]
    got = await chat.call("GET", f"/v1/sync?since={hello['cursor']}", bob, expect=200)
    assert {m["id"] for m in got["deleted"]} == {m["id"]} and [u["id"] for u in got["updated"]] == [t["id"]]
    await ws.close()
    await ann_ws.close()


async def test_replay_buffer_overflow_means_sync(tmp_path: object) -> None:
    from tests.chat.conftest import start_chat_server

    runner, chat = await start_chat_server(tmp_path, None, replay_events=3)  # type: ignore[arg-type]
    try:
        ann = await chat.user("ann")
        bob = await chat.user("bob")
        await chat.call("POST", "/v1/channels", ann, {"name": "c", "kind": "team", "members": ["bob"]}, expect=201)
        ws = await connect(chat, bob)
        hello = await recv(ws)
        await ws.close()
        for i in range(5):
            await chat.call("POST", "/v1/messages", ann, {"to": "c", "content": f"m{i}"}, expect=201)
        ws = await connect(chat, bob, hello["session"], 0)
        assert (await recv(ws))["resumed"] is False
        got = await chat.call("GET", f"/v1/sync?since={hello['cursor']}", bob, expect=200)
        assert [u["content"] for u in got["updated"]] == [f"m{i}" for i in range(5)]
        await ws.close()
    finally:
        await chat.session.close()
        await runner.cleanup()


async def test_meeting_token_and_service_api(chat: ChatServer) -> None:
    data_dir = chat.api.config.data_dir
    issuer = TokenIssuer(load_or_create_secret(data_dir))
    meeting, _ = await chat.api.auth.meetings.live_or_start("standup", guests=True)
    carol = issuer.mint("standup", "carol", name="Carol", meeting=meeting.meeting_id)
    dave = issuer.mint("standup", "dave", meeting=meeting.meeting_id)
    # First post with a meeting token creates the channel lazily and makes the poster a (guest) member; the
    # room's name names the meeting's channel for its tokens.
    m = await chat.call("POST", "/v1/messages", carol, {"to": "standup", "content": "hi all"}, expect=201)
    me = await chat.call("GET", "/v1/me", carol, expect=200)
    assert me["user"]["role"] == "guest" and me["room"] == "standup" and me["meeting"] == meeting.meeting_id
    hist = await chat.call("GET", f"/v1/channels/{me['channel']}/messages", dave, expect=200)
    assert hist["channel"]["kind"] == "meeting" and [x["id"] for x in hist["messages"]] == [m["id"]]
    await chat.call("POST", "/v1/channels", carol, {"name": "mine", "kind": "team"}, expect=403)
    # The service API for the rooms and captions code.
    service = chat.api.service
    ch = await service.ensure_meeting_channel("m_review", "review")
    assert (await service.ensure_meeting_channel("m_review", "review")).id == ch.id and ch.topic == "review"
    due = datetime.now(UTC) + timedelta(days=1)
    task = await service.post_task("m_review", "Send the minutes", "carol", due, "captions-bot")
    assert task.task is not None and task.task.assignee == "carol" and abs((task.task.due or 0) - due.timestamp()) < 1
    # Tasks are listed with a user's own credential; a meeting token does not reach /v1/tasks.
    await chat.call("GET", "/v1/tasks?assignee=me", carol, expect=403)
    mine = await chat.call("GET", "/v1/tasks?assignee=me", issuer.mint(USER_SCOPE, "carol"), expect=200)
    assert [x["id"] for x in mine["tasks"]] == [task.id]


async def test_sockets_closed_on_shutdown(tmp_path: object) -> None:
    from tests.chat.conftest import start_chat_server

    runner, chat = await start_chat_server(tmp_path, None)  # type: ignore[arg-type]
    try:
        ann = await chat.user("ann")
        ws = await connect(chat, ann)
        assert (await recv(ws))["type"] == "hello"
        await runner.cleanup()
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001 and msg.extra == "server shutting down"
    finally:
        await chat.session.close()
        await runner.cleanup()
