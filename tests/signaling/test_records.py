"""Meeting records (issue #13): record tokens, the meeting page's REST and the organizer's notes flow.

A real server; people join over signaling; what they "said" is added to the live meeting's transcript as final
captions (the speech path itself is covered by tests/browser/test_record_page.py and the caption tests).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chat.errors import ChannelNotFound
from chat.web import CHAT
from signaling.client import SignalingClient
from tests.conftest import RunningServer, running_server, server_config
from transcribe.caption import Caption
from transcribe.web import TRANSCRIBE

SAID = [
    ("Good morning everyone. We decided to ship the beta next week.", 1.0, 4.0),
    ("I will send the budget to finance by Friday.", 5.0, 8.0),
]


@dataclass
class Person:
    token: str
    client: SignalingClient
    participant_id: str


@dataclass
class Meeting:
    room: str
    meeting_id: str
    mod: Person
    guest: Person


async def call(http: aiohttp.ClientSession, server: RunningServer, method: str, path: str, credential: str | None,
               body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    async with http.request(method, server.url + path, json=body, headers=headers) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


def code(body: Any) -> str | None:
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


async def start_meeting(http: aiohttp.ClientSession, server: RunningServer, room: str, speak: bool = True) -> Meeting:
    """Mona opens the room (its moderator), Gus joins; Mona says SAID (as the transcriber's finals)."""
    people = []
    for name in ("Mona", "Gus"):
        status, joined = await call(http, server, "POST", f"/v1/rooms/{room}/join", None, {"name": name})
        assert status == 201, joined
        client = SignalingClient(server.url, room, joined["token"])
        hello = await client.connect()
        people.append(Person(joined["token"], client, hello["participant"]["id"]))
    mod, guest = people
    meeting_id = joined["meeting_id"]
    if speak:
        transcriber = server.app[TRANSCRIBE].live(room)
        assert transcriber is not None
        for i, (text, start, end) in enumerate(SAID):
            transcriber.transcript.add(Caption(f"S{i}", mod.participant_id, "Mona", start, end, text, True))
    return Meeting(room, meeting_id, mod, guest)


async def end_meeting(meeting: Meeting) -> tuple[dict[str, Any], dict[str, Any]]:
    """Mona ends it for all: the `room_ended` each of them got."""
    await meeting.mod.client.send({"type": "end_room"})
    ended = [await p.client.wait_for("room_ended") for p in (meeting.mod, meeting.guest)]
    for p in (meeting.mod, meeting.guest):
        await p.client.close()
    return ended[0], ended[1]


async def meeting_messages(server: RunningServer, meeting_id: str) -> list[Any]:
    chat = server.app[CHAT]
    try:
        channel = await chat.resolve(meeting_id)  # made in the background as the meeting starts
    except ChannelNotFound:
        return []
    return list(await chat.store.history(channel.id, None, None, 100, None))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_an_ended_meeting_is_read_with_its_record_token_and_not_its_meeting_token(
        server: RunningServer, http: aiohttp.ClientSession) -> None:
    m = await start_meeting(http, server, "rec")
    # While it runs a moderator asks for the page's pass; an attendee may not (the organisation did not allow it).
    status, minted = await call(http, server, "POST", "/v1/rooms/rec/record-token", m.mod.token)
    assert status == 201 and minted["meeting_id"] == m.meeting_id and minted["page"] == f"/m/{m.meeting_id}"
    status, body = await call(http, server, "POST", "/v1/rooms/rec/record-token", m.guest.token)
    assert (status, code(body)) == (403, "forbidden")

    to_mod, to_guest = await end_meeting(m)
    record = to_mod["record_token"]
    assert to_mod["meeting_id"] == m.meeting_id and to_mod["record_page"] == f"/m/{m.meeting_id}"
    assert "record_token" not in to_guest  # attendees get none unless --attendees-see-records

    # The meeting token is over everywhere, the meeting page's routes included.
    for path in (f"/v1/meetings/{m.meeting_id}", f"/v1/meetings/{m.meeting_id}/transcript",
                 "/v1/rooms/rec/transcript", "/v1/rooms/rec/record-token"):
        method = "POST" if path.endswith("record-token") else "GET"
        status, body = await call(http, server, method, path, m.mod.token)
        assert (status, code(body)) == (403, "meeting_ended"), path

    # Both record tokens (from room_ended and from REST) read the ended meeting.
    for token in (record, minted["token"]):
        status, meeting = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}", token)
        assert status == 200, meeting
        assert meeting["live"] is False and meeting["may_edit"] is True
        assert meeting["attendees"] == ["Mona", "Gus"]
        assert {p["name"]: p["seconds"] for p in meeting["speaking"]} == {"Mona": 6.0, "Gus": 0.0}
    status, vtt = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}/transcript?format=vtt", record)
    assert status == 200 and vtt.startswith("WEBVTT") and "<v Mona>Good morning everyone." in vtt
    for fmt in ("srt", "txt", "md", "json"):
        status, text = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}/transcript?format={fmt}", record)
        assert status == 200 and "budget" in (text if isinstance(text, str) else json.dumps(text)), fmt
    status, body = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}/transcript?format=doc", record)
    assert (status, code(body)) == (400, "invalid_field")

    # "My meetings": a record token lists its own meeting; the admin key lists every meeting.
    status, mine = await call(http, server, "GET", "/v1/meetings", record)
    assert status == 200 and [x["meeting_id"] for x in mine["meetings"]] == [m.meeting_id]
    assert mine["meetings"][0]["attendees"] == ["Mona", "Gus"] and mine["meetings"][0]["duration_seconds"] >= 0
    status, everything = await call(http, server, "GET", "/v1/meetings", server.api_key)
    assert status == 200 and m.meeting_id in [x["meeting_id"] for x in everything["meetings"]]

    # The record token reaches no meeting: not signaling, not chat, not room REST.
    probe = SignalingClient(server.url, "rec", record)
    try:
        with pytest.raises(Exception) as refused:
            await probe.connect()
        assert "out_of_scope" in str(refused.value) or probe.close_code == 4403
    finally:
        await probe.close()
    for method, path in (("GET", "/v1/me"), ("GET", "/v1/channels"), ("GET", "/v1/rooms/rec"),
                         ("POST", "/v1/rooms/rec/record-token"), ("GET", "/v1/rooms/rec/transcript")):
        status, body = await call(http, server, method, path, record)
        assert (status, code(body)) == (403, "out_of_scope"), (method, path, body)
    async with http.ws_connect(server.url.replace("http", "ws", 1) + "/v1/chat/ws") as ws:
        await ws.send_str(json.dumps({"type": "auth", "token": record}))
        frame = json.loads((await ws.receive(timeout=5)).data)
        assert frame["type"] == "error" and frame["error"]["code"] == "out_of_scope"

    # Another meeting's record is refused, the room's next meeting included.
    other = await start_meeting(http, server, "rec", speak=False)
    try:
        assert other.meeting_id != m.meeting_id
        for path in (f"/v1/meetings/{other.meeting_id}", f"/v1/meetings/{other.meeting_id}/transcript",
                     f"/v1/meetings/{other.meeting_id}/notes"):
            status, body = await call(http, server, "GET", path, record)
            assert (status, code(body)) == (403, "out_of_scope"), path
        # ... and the new meeting's live moderator token does not reach the old record.
        status, body = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}", other.mod.token)
        assert (status, code(body)) == (403, "out_of_scope")
    finally:
        await end_meeting(other)

    # The meeting's chat got the page's link (no token in it); it is posted as the meeting ends, in the background.
    texts: list[str] = []
    for _ in range(100):
        texts = [msg.content for msg in await meeting_messages(server, m.meeting_id)]
        if texts:
            break
        await asyncio.sleep(0.05)
    assert any(f"/m/{m.meeting_id}" in t for t in texts), texts
    assert not any("eyJ" in t for t in texts)


async def test_attendees_get_a_record_token_where_the_organisation_allows(tmp_path: Path,
                                                                           http: aiohttp.ClientSession) -> None:
    async with running_server(server_config(tmp_path / "data", attendees_see_records=True)) as server:
        m = await start_meeting(http, server, "open-book")
        status, minted = await call(http, server, "POST", "/v1/rooms/open-book/record-token", m.guest.token)
        assert status == 201 and minted["moderator"] is False
        _, to_guest = await end_meeting(m)
        record = to_guest["record_token"]
        status, meeting = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}", record)
        assert status == 200 and meeting["may_edit"] is False
        status, notes = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}/notes", record)
        assert status == 200 and notes["action_items"]
        # Reading is all: an attendee's record token neither edits nor posts the notes.
        status, body = await call(http, server, "PUT", f"/v1/meetings/{m.meeting_id}/notes", record, {"summary": []})
        assert (status, code(body)) == (403, "forbidden")
        status, body = await call(http, server, "POST", f"/v1/meetings/{m.meeting_id}/notes/publish", record)
        assert (status, code(body)) == (403, "forbidden")


async def tasks_in(server: RunningServer, meeting_id: str) -> list[tuple[str, str | None]]:
    return [(msg.task.title, msg.task.assignee) for msg in await meeting_messages(server, meeting_id)
            if msg.task is not None]


async def test_the_organizer_edits_the_notes_then_posts_the_action_items(
        server: RunningServer, http: aiohttp.ClientSession) -> None:
    m = await start_meeting(http, server, "planning")
    notes_path = f"/v1/meetings/{m.meeting_id}/notes"
    # While the meeting runs nothing is posted yet, and nothing can be.
    status, body = await call(http, server, "POST", notes_path + "/publish", m.mod.token)
    assert (status, code(body)) == (409, "invalid_state")
    to_mod, _ = await end_meeting(m)
    record = to_mod["record_token"]
    await asyncio.sleep(0.3)
    assert await tasks_in(server, m.meeting_id) == []  # the end no longer posts them by itself

    status, notes = await call(http, server, "GET", notes_path, record)
    assert status == 200 and notes["state"] == {"edited": False, "edited_by": "", "published_at": None,
                                                "published_by": "", "tasks_posted": 0}
    assert [(i["owner"], i["task"]) for i in notes["action_items"]] == [("Mona", "Send the budget to finance by Friday")]
    assert any("ship the beta" in d for d in notes["decisions"])

    # Bad edits change nothing.
    gus_identity = next(a["identity"] for a in notes["attendees"] if a["name"] == "Gus")
    for bad in ({"action_items": [{"task": "x", "due": "next week"}]}, {"summary": "one line"},
                {"action_items": [{"task": ""}]}, {"action_items": [{"task": "x", "owner": "a\nb"}]},
                {"decisions": ["ok"], "attendees": []}, {"summary": ["x"] * 51}):
        status, body = await call(http, server, "PUT", notes_path, record, bad)
        assert status == 400 and code(body) in ("invalid_field", "bad_request"), (bad, body)
    status, same = await call(http, server, "GET", notes_path, record)
    assert same == notes

    edit = {"summary": ["We ship the beta next week."], "decisions": ["Ship the beta next week"],
            "action_items": [{"task": "Send the budget to finance", "owner": "Mona", "due": "2030-01-10"},
                             {"task": "Book the launch room", "owner": "gus", "due": None}]}
    status, edited = await call(http, server, "PUT", notes_path, record, edit)
    assert status == 200 and edited["state"]["edited"] is True and edited["state"]["edited_by"] == "Mona"
    assert edited["summary"] == edit["summary"] and edited["decisions"] == edit["decisions"]
    assert [(i["task"], i["owner"], i["due"], i["owner_identity"]) for i in edited["action_items"]] == [
        ("Send the budget to finance", "Mona", "2030-01-10", edited["action_items"][0]["owner_identity"]),
        ("Book the launch room", "Gus", None, gus_identity)]
    status, markdown = await call(http, server, "GET", notes_path + "?format=md", record)
    assert status == 200 and "Book the launch room" in markdown and "(due 2030-01-10)" in markdown
    assert await tasks_in(server, m.meeting_id) == []  # saving is not posting

    status, state = await call(http, server, "POST", notes_path + "/publish", record)
    assert status == 200 and state["tasks_posted"] == 2 and state["published_by"] == "Mona"
    assert sorted(await tasks_in(server, m.meeting_id)) == sorted(
        [("Send the budget to finance", edited["action_items"][0]["owner_identity"]),
         ("Book the launch room", gus_identity)])
    # Posted once: a second post, and any later edit, are refused and change nothing.
    status, body = await call(http, server, "POST", notes_path + "/publish", record)
    assert (status, code(body)) == (409, "notes_published")
    status, body = await call(http, server, "PUT", notes_path, record, {"summary": ["changed"]})
    assert (status, code(body)) == (409, "notes_published")
    assert len(await tasks_in(server, m.meeting_id)) == 2
    status, final = await call(http, server, "GET", notes_path, record)
    assert final["summary"] == edit["summary"] and final["state"]["published_at"] is not None


async def test_action_items_nobody_posted_are_posted_after_the_fallback_delay(
        tmp_path: Path, http: aiohttp.ClientSession) -> None:
    async with running_server(server_config(tmp_path / "data", notes_autopublish_seconds=0.5)) as server:
        m = await start_meeting(http, server, "forgotten")
        to_mod, _ = await end_meeting(m)
        for _ in range(50):
            if await tasks_in(server, m.meeting_id):
                break
            await asyncio.sleep(0.1)
        assert [t for t, _ in await tasks_in(server, m.meeting_id)] == ["Send the budget to finance by Friday"]
        status, body = await call(http, server, "POST", f"/v1/meetings/{m.meeting_id}/notes/publish",
                                  to_mod["record_token"])
        assert (status, code(body)) == (409, "notes_published")
        status, notes = await call(http, server, "GET", f"/v1/meetings/{m.meeting_id}/notes", to_mod["record_token"])
        assert notes["state"]["published_by"] == "autopublish" and notes["state"]["tasks_posted"] == 1


def test_a_record_token_and_a_meeting_token_never_stand_in_for_each_other() -> None:
    from common.errors import InvalidToken, OutOfScope
    from identity.tokens import TokenIssuer

    issuer = TokenIssuer(b"k" * 32)
    record = issuer.mint_record("rec", "m_" + "a" * 22, "alice", name="Alice", moderator=True)
    meeting = issuer.mint("rec", "alice", meeting="m_" + "a" * 22)
    assert issuer.verify_record(record).moderator is True
    assert issuer.verify(meeting).meeting == "m_" + "a" * 22
    with pytest.raises(OutOfScope):
        issuer.verify(record)  # signaling, chat and room REST all verify this way
    with pytest.raises(OutOfScope):
        issuer.verify_record(meeting)
    with pytest.raises(InvalidToken):
        TokenIssuer(b"x" * 32).verify_record(record)  # another server's secret
    import jwt
    odd = jwt.encode({"iss": "convene", "use": "admin", "sub": "a", "room": "rec", "mtg": "m_x", "exp": 2**40},
                     b"k" * 32, algorithm="HS256")
    with pytest.raises(InvalidToken):
        issuer.verify(odd)  # an unknown use is no meeting token either
    with pytest.raises(ValueError):
        issuer.mint_record("@chat", "m_x", "alice")
