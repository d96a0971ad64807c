"""What every room gets besides media: live captions (a hidden in-process participant that listens
to each audio track) and its meeting channel in chat. When the meeting ends, the channel gets a link to the
meeting page (`/m/{meeting_id}`: transcript, notes); the notes' action items land there as tasks when the
organizer posts them from that page, or by themselves `notes_autopublish_seconds` later (transcribe/records.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from chat.service import SYSTEM_LOGIN, PostRequest
from chat.web import CHAT
from sfu.local import LocalDown
from sfu.participant import Participant, Permissions
from sfu.room import Room
from sfu.rooms import SHUTDOWN_REASON, RoomRegistry
from signaling.appkeys import CONFIG, MEETINGS
from transcribe.records import RECORDS, meeting_page
from transcribe.room import AudioSink, RoomTranscriber
from transcribe.web import TRANSCRIBE

log = logging.getLogger("convene.sidecars")

CAPTIONS = web.AppKey("room_captions", dict[str, "CaptionsClient"])
# The system message the meeting's chat channel gets when it ends (one place, for the i18n catalogue).
MEETING_ENDED_TEXT = "The meeting has ended. Transcript, notes and action items: {link}"


class CaptionsClient:
    """The transcriber as a client of the room: it receives every audio track (only audio), and
    follows who is there and whether captions are on. Other workers' participants are captioned
    where they are connected (their worker), so a room spanning workers captions everyone once
    per worker that has listeners."""

    def __init__(self, room: Room, captions: RoomTranscriber) -> None:
        self.room = room
        self.captions = captions
        self.participant = Participant("captions", "Captions", Permissions(publish=False),
                                       down=LocalDown(self._accept, kinds=frozenset({"audio"})),
                                       hidden=True)

    def _accept(self, kind: str, track_id: str, participant_id: str, source: str) -> AudioSink | None:
        if kind != "audio":
            return None
        speaker = self.room.participants.get(participant_id)
        if speaker is not None:
            self.captions.on_participant(speaker.id, speaker.name, speaker.identity)
        return self.captions.add_audio(track_id, participant_id)

    def on_room_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "participant_joined":
            p = event["participant"]
            self.captions.on_participant(p["id"], p["name"], p.get("identity", ""))
        elif kind == "participant_left":
            self.captions.on_participant_left(str(event["participant_id"]))
        elif kind == "track_unpublished":
            self.captions.remove_audio(str(event["track_id"]))
        elif kind == "captions":
            self.captions.set_enabled(bool(event["enabled"]))
        elif kind == "language":
            self.captions.set_language(str(event["language"]))


def attach_sidecars(app: web.Application, rooms: RoomRegistry) -> None:
    clients: dict[str, CaptionsClient] = {}
    app[CAPTIONS] = clients
    tasks: set[asyncio.Task[Any]] = set()

    def room_created(room: Room) -> None:
        if TRANSCRIBE in app:
            captions = app[TRANSCRIBE].open_room(room.name, emit=room.emit, enabled=room.captions,
                                                 meeting_id=room.meeting_id or None)
            client = CaptionsClient(room, captions)
            clients[room.name] = client
            room.add_listener(client)
            room.join(client.participant)
        # The meeting's chat channel is made when someone first uses chat (chat/auth.py joins it), not here: a
        # meeting nobody attended (anonymous joins that never connect) leaves no channel behind.

    async def room_closing(room: Room) -> None:
        client = clients.pop(room.name, None)
        if client is None or TRANSCRIBE not in app:
            return
        await app[TRANSCRIBE].close_room(room.name)  # transcript and generated notes stored

    def room_ended(room: Room, reason: str) -> None:
        """A meeting that is over (not one paused by a restart): its chat gets the meeting page's link, and the
        action items wait for the organizer (posted by themselves after `notes_autopublish_seconds`)."""
        if reason == SHUTDOWN_REASON or not room.meeting_id or not room.attended:
            return
        if RECORDS in app and CHAT in app:
            app[RECORDS].schedule_autopublish(room.meeting_id)
        if CHAT in app:
            task = asyncio.get_running_loop().create_task(post_record_link(room.meeting_id, room.name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def post_record_link(meeting_id: str, name: str) -> None:
        chat = app[CHAT]
        try:
            channel = await chat.ensure_meeting_channel(meeting_id, name)
            system = await chat.ensure_user(SYSTEM_LOGIN, role="bot", name="Convene")
            if not await chat.store.is_member(channel.id, SYSTEM_LOGIN):
                await chat.store.add_members(channel.id, [SYSTEM_LOGIN])
            link = app[CONFIG].url + meeting_page(meeting_id) if CONFIG in app else meeting_page(meeting_id)
            await chat.post(system, PostRequest(to=channel.id, content=MEETING_ENDED_TEXT.format(link=link)))
        except Exception:
            log.exception("room %s: could not post the meeting page's link to chat", name)

    if CHAT in app and RECORDS in app:
        chat = app[CHAT]

        async def post_task(channel: str, title: str, assignee: str | None, due: str | None, author: str) -> object:
            # Notes give due dates as ISO days; a task is due at the end of that day (UTC).
            due_at = datetime.fromisoformat(due).replace(hour=23, minute=59, tzinfo=timezone.utc) if due else None
            meeting = await app[MEETINGS].get(channel) if MEETINGS in app else None
            if meeting is not None:  # nobody may have chatted: the channel comes with the first post
                await chat.ensure_meeting_channel(meeting.meeting_id, meeting.room)
            return await chat.post_task(channel, title, assignee, due_at, author)

        app[RECORDS].poster = post_task

    rooms.on_room_created.append(room_created)
    rooms.on_room_closing.append(room_closing)
    rooms.on_room_ended.append(room_ended)
