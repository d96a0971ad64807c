"""A meeting's record after (and while) it runs: the REST behind the meeting page `/m/{meeting_id}`.

    GET  /v1/meetings                          "my meetings": an admin key lists all, a record token its own
    GET  /v1/meetings/{id}                     date, duration, attendees and speaking time, what the caller may do
    GET  /v1/meetings/{id}/transcript?format=  vtt, srt, json, txt, md
    GET  /v1/meetings/{id}/notes?format=       md, json: the generated notes, or the organizer's edit of them
    PUT  /v1/meetings/{id}/notes               the organizer's edit (summary, decisions, action items)
    POST /v1/meetings/{id}/notes/publish       posts the action items to the meeting's chat as tasks, once
    POST /v1/rooms/{room}/record-token         a record token for the caller's live meeting (moderators; attendees
                                               where the organisation allows)

Who reads what is `identity.auth.record_reader`. The action items are not posted when the meeting ends any more:
the organizer edits, then posts; if nobody has posted `notes_autopublish_seconds` after the end, the notes as
they stand (edited or not) are posted by `autopublish`, so tasks are not lost to a forgotten page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from aiohttp import web

from common.errors import Forbidden, InvalidField, InvalidState, NotFound, NotesPublished, OutOfScope
from common.names import UNSAFE_CHARS
from common.wire import read_json_object
from identity.apikeys import PREFIX
from identity.appkeys import API_KEYS, MEETINGS, TOKENS
from identity.auth import RecordReader, authenticate, bearer, record_reader
from identity.meetings import Meeting, MeetingLedger
from identity.orgs import org_name, plain, same_org
from identity.tokens import RECORD_TTL_SECONDS
from transcribe.formats import FORMATS, render
from transcribe.notes import ActionItem, MeetingNotes, NotesWriter
from transcribe.room import PostTask, post_action_items
from transcribe.service import TranscribeService
from transcribe.transcript import Transcript

log = logging.getLogger("convene.transcribe.records")

STATE_FILE = "notes.state.json"
TASK_AUTHOR = "convene-captions"
MAX_ITEMS = 50
MAX_TEXT = 1000
MAX_LIST = 200


def meeting_page(meeting_id: str) -> str:
    """The meeting page's path: no credential in it (the page takes its record token from storage)."""
    return f"/m/{meeting_id}"


@dataclass
class NotesState:
    """What the organizer did to a meeting's notes: their edit, and when the action items were posted."""

    edited: dict[str, Any] | None = None
    edited_by: str = ""
    published_at: float | None = None
    published_by: str = ""
    tasks_posted: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {"edited": self.edited is not None, "edited_by": self.edited_by, "published_at": self.published_at,
                "published_by": self.published_by, "tasks_posted": self.tasks_posted}


class MeetingRecords:
    """Reads transcripts by meeting id and keeps the notes' edit and publish state next to them."""

    def __init__(self, service: TranscribeService, ledger: MeetingLedger, attendees_allowed: bool = False,
                 autopublish_seconds: float = 3600.0) -> None:
        self.service = service
        self.ledger = ledger
        self.attendees_allowed = attendees_allowed
        self.autopublish_seconds = autopublish_seconds
        # Set by the front door when the server has chat: posts one action item as a task.
        self.poster: PostTask | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._timers: set[asyncio.Task[None]] = set()

    # -- reading --------------------------------------------------------------------------------------------------

    async def transcript(self, meeting: Meeting) -> Transcript | None:
        return await self.service.transcript(meeting.room, meeting.meeting_id)

    async def _save_state(self, meeting: Meeting, state: NotesState) -> None:
        await self.service.store.save_state(meeting.room, meeting.meeting_id, dict(state.__dict__))

    async def state(self, meeting: Meeting) -> NotesState:
        data = await self.service.store.load_state(meeting.room, meeting.meeting_id)
        if data is None:
            return NotesState()
        return NotesState(**{k: v for k, v in data.items() if k in NotesState.__dataclass_fields__})

    async def notes(self, meeting: Meeting, day: date | None = None) -> tuple[MeetingNotes, NotesState]:
        """The notes as they stand: generated from the transcript, with the organizer's edit laid over them."""
        transcript = await self.transcript(meeting)
        if transcript is None:
            raise NotFound("this meeting has no transcript (nobody attended, or it was not kept)")
        notes = NotesWriter().write(transcript, day)
        state = await self.state(meeting)
        if state.edited is not None:
            notes = _apply_edit(notes, transcript, state.edited)
        return notes, state

    async def summary(self, meeting: Meeting) -> dict[str, Any]:
        """One line of "my meetings": date, duration and who came."""
        transcript = await self.transcript(meeting)
        end = meeting.ended_at if meeting.ended_at is not None else time.time()
        attendees = [] if transcript is None else [a.name for a in transcript.attendees.values()]
        return {**meeting.to_wire(), "live": meeting.live, "duration_seconds": round(end - meeting.started_at, 1),
                "attendees": list(dict.fromkeys(attendees)), "has_transcript": transcript is not None,
                "page": meeting_page(meeting.meeting_id)}

    # -- the organizer's edit and publish -------------------------------------------------------------------------

    def _lock(self, meeting_id: str) -> asyncio.Lock:
        return self._locks.setdefault(meeting_id, asyncio.Lock())

    async def save_edit(self, meeting: Meeting, edit: dict[str, Any], by: str) -> tuple[MeetingNotes, NotesState]:
        async with self._lock(meeting.meeting_id):
            state = await self.state(meeting)
            if state.published_at is not None:
                raise NotesPublished("the action items were posted already; the notes no longer change")
            if await self.transcript(meeting) is None:
                raise NotFound("this meeting has no transcript (nobody attended, or it was not kept)")
            state.edited, state.edited_by = edit, by
            await self._save_state(meeting, state)
        return await self.notes(meeting)

    async def publish(self, meeting: Meeting, by: str) -> NotesState:
        """Posts the action items as tasks in the meeting's chat channel, once (`notes_published` after)."""
        if meeting.live:
            raise InvalidState("the meeting is still running: post its action items after it ends")
        if self.poster is None:
            raise InvalidState("this server has no chat to post the action items to")
        async with self._lock(meeting.meeting_id):
            notes, state = await self.notes(meeting)
            if state.published_at is not None:
                raise NotesPublished("the action items were posted already")
            posted = await post_action_items(notes, self.poster, channel=meeting.meeting_id, author_login=TASK_AUTHOR)
            state.published_at, state.published_by, state.tasks_posted = time.time(), by, posted
            await self._save_state(meeting, state)
        log.info("meeting %s: %d action items posted by %s", meeting.meeting_id[:6], posted, by or "an admin")
        return state

    def schedule_autopublish(self, meeting_id: str) -> None:
        """If nobody posts the action items within `autopublish_seconds` of the end, posts them as they stand."""
        if self.autopublish_seconds <= 0:
            return
        task = asyncio.get_running_loop().create_task(self._autopublish(meeting_id))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _autopublish(self, meeting_id: str) -> None:
        await asyncio.sleep(self.autopublish_seconds)
        meeting = await self.ledger.get(meeting_id)
        if meeting is None:
            return
        try:
            await self.publish(meeting, by="autopublish")
        except (NotesPublished, NotFound):
            pass  # the organizer did, or there is nothing to post
        except Exception:
            log.exception("meeting %s: posting the action items failed", meeting_id[:6])

    def close(self) -> None:
        for task in list(self._timers):
            task.cancel()


def _text(value: object, field: str, max_len: int = MAX_TEXT, optional: bool = False) -> str:
    if optional and value in (None, ""):
        return ""
    if not isinstance(value, str) or UNSAFE_CHARS.search(value) or not 1 <= len(value.strip()) <= max_len:
        raise InvalidField(f"{field} must be one line of 1-{max_len} characters", field=field)
    return value.strip()


def _texts(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field, [])
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise InvalidField(f"{field} must be a list of at most {MAX_ITEMS} lines", field=field)
    return [_text(v, field) for v in value]


def validate_edit(body: dict[str, Any]) -> dict[str, Any]:
    """The organizer's edit as stored: `summary` and `decisions` lines, `action_items` {task, owner, due}."""
    items = body.get("action_items", [])
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise InvalidField(f"action_items must be a list of at most {MAX_ITEMS}", field="action_items")
    clean_items = []
    for item in items:
        if not isinstance(item, dict) or not set(item) <= {"task", "owner", "due"}:
            raise InvalidField("each action item is {task, owner, due}", field="action_items")
        due = item.get("due")
        if due not in (None, ""):
            try:
                due = date.fromisoformat(str(due)).isoformat() if isinstance(due, str) else None
            except ValueError:
                due = None
            if due is None:
                raise InvalidField("due must be a date YYYY-MM-DD or null", field="due")
        clean_items.append({"task": _text(item.get("task"), "task", 500),
                            "owner": _text(item.get("owner"), "owner", 128, optional=True), "due": due or None})
    return {"summary": _texts(body, "summary"), "decisions": _texts(body, "decisions"), "action_items": clean_items}


def _apply_edit(notes: MeetingNotes, transcript: Transcript, edit: dict[str, Any]) -> MeetingNotes:
    """The generated notes with the organizer's lines; an owner named like an attendee is assigned to them."""
    by_name = {a.name.lower(): a for a in transcript.attendees.values() if a.name}
    items = []
    for item in edit.get("action_items", []):
        owner = str(item.get("owner") or "")
        attendee = by_name.get(owner.lower())
        items.append(ActionItem(owner=attendee.name if attendee else owner,
                                owner_participant_id=attendee.participant_id if attendee else None,
                                owner_identity=(attendee.identity or None) if attendee else None,
                                task=str(item["task"]), due=item.get("due"), said_by="", at=0.0, sentence=""))
    return replace(notes, summary=list(edit.get("summary", [])), decisions=list(edit.get("decisions", [])),
                   action_items=items)


# -- HTTP ---------------------------------------------------------------------------------------------------------

RECORDS = web.AppKey("meeting_records", MeetingRecords)


async def _reader(request: web.Request) -> RecordReader:
    records = request.app[RECORDS]
    return await record_reader(request, request.match_info["meeting_id"], attendees_allowed=records.attendees_allowed)


async def _editor(request: web.Request) -> RecordReader:
    reader = await _reader(request)
    if not reader.may_edit:
        raise Forbidden("only the meeting's organizer (a moderator) edits and posts its notes")
    return reader


async def list_meetings(request: web.Request) -> web.Response:
    """An admin key: every meeting, newest first; a record token: its own meeting."""
    value = bearer(request)
    records = request.app[RECORDS]
    raw_limit = request.query.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST:
        raise InvalidField(f"limit must be 1-{MAX_LIST}", field="limit")
    if value.startswith(PREFIX):
        key = await request.app[API_KEYS].verify(value)
        same_org(request, key.org, "meeting")
        if key.role != "admin":
            raise Forbidden("listing meetings needs an admin API key or a record token")
        meetings = await request.app[MEETINGS].recent(int(raw_limit), org=key.org)
    else:
        tokens = request.app[TOKENS]
        if not tokens.is_record(value):
            tokens.verify(value)  # an invalid or expired one says so
            raise OutOfScope("a meeting's record is listed with its record token")
        record = tokens.verify_record(value)
        same_org(request, record.org, "meeting")
        found = await request.app[MEETINGS].get(record.meeting)
        meetings = [found] if found is not None and found.room == record.room else []
    return web.json_response({"meetings": [await records.summary(m) for m in meetings]})


async def get_meeting(request: web.Request) -> web.Response:
    reader = await _reader(request)
    records = request.app[RECORDS]
    summary = await records.summary(reader.meeting)
    transcript = await records.transcript(reader.meeting)
    speaking: list[dict[str, Any]] = []
    if transcript is not None:
        speaking = [{"name": a.name, "seconds": a.seconds}
                    for a in NotesWriter().write(transcript).attendees]
    state = await records.state(reader.meeting) if transcript is not None else NotesState()
    return web.json_response({**summary, "speaking": speaking, "may_edit": reader.may_edit,
                              "notes_state": state.to_wire(), "you": reader.name})


async def get_transcript(request: web.Request) -> web.Response:
    reader = await _reader(request)
    fmt = request.query.get("format", "vtt")
    if fmt not in FORMATS:
        raise InvalidField(f"format must be one of {', '.join(FORMATS)}", field="format")
    transcript = await request.app[RECORDS].transcript(reader.meeting)
    if transcript is None:
        raise NotFound("this meeting has no transcript")
    day = time.strftime("%Y-%m-%d", time.gmtime(reader.meeting.started_at))
    return web.Response(text=render(transcript, fmt), content_type=FORMATS[fmt], charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{plain(reader.meeting.room)}-{day}.{fmt}"',
                                 "Cache-Control": "no-store"})


def _notes_response(request: web.Request, notes: MeetingNotes, state: NotesState) -> web.Response:
    fmt = request.query.get("format", "json")
    if fmt == "md":
        return web.Response(text=notes.to_markdown(), content_type="text/markdown", charset="utf-8",
                            headers={"Cache-Control": "no-store"})
    return web.json_response({**notes.to_dict(), "state": state.to_wire()}, headers={"Cache-Control": "no-store"})


async def get_notes(request: web.Request) -> web.Response:
    reader = await _reader(request)
    if request.query.get("format", "json") not in ("md", "json"):
        raise InvalidField("format must be md or json", field="format")
    notes, state = await request.app[RECORDS].notes(reader.meeting)
    return _notes_response(request, notes, state)


async def put_notes(request: web.Request) -> web.Response:
    reader = await _editor(request)
    body = await read_json_object(request, allowed={"summary", "decisions", "action_items"})
    edit = validate_edit(body)
    notes, state = await request.app[RECORDS].save_edit(reader.meeting, edit, by=reader.name or reader.identity)
    return _notes_response(request, notes, state)


async def publish_notes(request: web.Request) -> web.Response:
    reader = await _editor(request)
    state = await request.app[RECORDS].publish(reader.meeting, by=reader.name or reader.identity)
    return web.json_response(state.to_wire())


async def create_record_token(request: web.Request) -> web.Response:
    """A record token for the caller's live meeting: the page's credential after the meeting ends."""
    room = org_name(request, request.match_info["room"])  # `org~room` outside the default organisation
    caller = await authenticate(request)
    records = request.app[RECORDS]
    if caller.token is None or caller.meeting is None or caller.token.room != room:
        raise Forbidden("a record token is made for a participant's own live meeting (send its meeting token)")
    moderator = caller.token.grants.moderator
    if not moderator and not records.attendees_allowed:
        raise Forbidden("this meeting's record is for its moderators")
    meeting = caller.meeting
    token = request.app[TOKENS].mint_record(room, meeting.meeting_id, caller.token.identity, name=caller.token.name,
                                            moderator=moderator)
    return web.json_response({"token": token, "meeting_id": meeting.meeting_id, "moderator": moderator,
                              "expires_at": int(time.time()) + RECORD_TTL_SECONDS,
                              "page": meeting_page(meeting.meeting_id)}, status=201)


def setup_records(app: web.Application, service: TranscribeService, attendees_allowed: bool,
                  autopublish_seconds: float) -> MeetingRecords:
    records = MeetingRecords(service, app[MEETINGS], attendees_allowed, autopublish_seconds)
    app[RECORDS] = records
    app.router.add_get("/v1/meetings", list_meetings)
    app.router.add_get("/v1/meetings/{meeting_id}", get_meeting)
    app.router.add_get("/v1/meetings/{meeting_id}/transcript", get_transcript)
    app.router.add_get("/v1/meetings/{meeting_id}/notes", get_notes)
    app.router.add_put("/v1/meetings/{meeting_id}/notes", put_notes)
    app.router.add_post("/v1/meetings/{meeting_id}/notes/publish", publish_notes)
    app.router.add_post("/v1/rooms/{room}/record-token", create_record_token)
    return records
