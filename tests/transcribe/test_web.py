"""Transcript and notes downloads over HTTP, with the server's real auth (API keys, moderator tokens)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from signaling.app import create_app
from signaling.appkeys import API_KEYS, MEETINGS
from common.config import Config
from identity.tokens import Grants
from tests.conftest import free_port, meeting_token
from tests.transcribe.test_formats_notes import parse_srt, parse_vtt, scripted
from transcribe.caption import Caption
from transcribe.web import TRANSCRIBE, setup_transcribe


@dataclass
class Server:
    app: web.Application
    url: str
    admin: str


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    port = free_port()
    config = Config(host="127.0.0.1", port=port, data_dir=tmp_path / "data", asr_workers=1)
    app = create_app(config)
    setup_transcribe(app, config)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    _, admin = await app[API_KEYS].create("tests", "admin")
    try:
        yield Server(app, f"http://127.0.0.1:{port}", admin)
    finally:
        await runner.cleanup()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_downloads_need_moderator_or_admin(server: Server) -> None:
    moderator = await meeting_token(server.app, "standup", "alice", grants=Grants(moderator=True))
    stored = scripted()  # as the meeting this token names stored it
    stored.meeting_id = (await server.app[MEETINGS].live("standup")).meeting_id
    await server.app[TRANSCRIBE].store.asave(stored)
    member = await meeting_token(server.app, "standup", "bob", grants=Grants())
    other_room = await meeting_token(server.app, "other", "carol", grants=Grants(moderator=True))
    url = f"{server.url}/v1/rooms/standup/transcript"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            assert r.status == 401
        for token in (member, other_room):
            async with http.get(url, headers=bearer(token)) as r:
                assert r.status == 403
        for token in (moderator, server.admin):
            async with http.get(url, headers=bearer(token)) as r:
                assert r.status == 200 and r.content_type == "text/vtt"
                cues = parse_vtt(await r.text())
                assert cues[2]["speaker"] == "Bob <QA>"
        async with http.get(url, params={"format": "srt"}, headers=bearer(moderator)) as r:
            assert len(parse_srt(await r.text())) == len(cues)
        for fmt in ("json", "txt", "md"):
            async with http.get(url, params={"format": fmt}, headers=bearer(moderator)) as r:
                assert r.status == 200 and "launch to next month" in await r.text()
        async with http.get(url, params={"format": "doc"}, headers=bearer(moderator)) as r:
            assert r.status == 400
        async with http.get(f"{server.url}/v1/rooms/standup/notes", params={"format": "json"},
                            headers=bearer(moderator)) as r:
            notes = json.loads(await r.text())
            assert {(i["owner"], i["due"]) for i in notes["action_items"]} >= {("Carol", "2026-11-27")}
        async with http.get(f"{server.url}/v1/rooms/standup/notes", headers=bearer(server.admin)) as r:
            assert "## Action items" in await r.text()
        async with http.get(f"{server.url}/v1/rooms/nothing/transcript", headers=bearer(server.admin)) as r:
            assert r.status == 404


async def test_live_room_transcript_and_metrics(server: Server) -> None:
    service = server.app[TRANSCRIBE]
    room = service.open_room("live", lambda event: None, enabled=False)  # no audio: no model needed
    room.on_participant("PA_a", "Alice")
    room.transcript.add(Caption("s1", "PA_a", "Alice", 1.0, 2.0, "Hello from the live room.", True))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/v1/rooms/live/transcript", params={"format": "txt"},
                            headers=bearer(server.admin)) as r:
            assert "Alice: Hello from the live room." in await r.text()
        async with http.get(f"{server.url}/v1/captions/metrics", headers=bearer(server.admin)) as r:
            body = await r.json()
            assert body["rooms"] == ["live"] and "queue_depth" in body
    meeting_id = await service.close_room("live")
    stored = await service.store.aload("live", meeting_id)  # kept in the store once the room closes
    assert stored is not None and [c.text for c in stored.captions] == ["Hello from the live room."]
