"""HTTP side of captions: transcript and notes downloads, metrics, and the service's lifetime in the app.

    setup_transcribe(app, config)   # registers routes, creates the service under TRANSCRIBE
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date

from aiohttp import web

from identity.auth import authenticate, require_server_admin_key
from identity.orgs import org_name, plain
from common.config import Config
from common.errors import Forbidden, InvalidField, NotFound
from transcribe.formats import FORMATS, render
from identity.appkeys import DATABASE, MEETINGS
from transcribe.notes import NotesWriter
from transcribe.records import RECORDS, setup_records
from store.database import Database
from transcribe.service import TranscribeService
from transcribe.store import TranscriptStore
from transcribe.settings import AsrSettings

TRANSCRIBE = web.AppKey("transcribe", TranscribeService)
# A meeting's id (m_ + 128 random bits), or a timestamp id of transcripts stored before meetings had ids.
_MEETING = re.compile(r"^(m_[A-Za-z0-9_-]{22}|[0-9]{8}T[0-9]{6}Z)$")


def settings_from_config(config: Config) -> AsrSettings:
    # The joined base model goes to ~/.cache/convene, or the data dir when there is no writable home.
    return AsrSettings(model=config.asr_model, language=config.asr_language, threads=config.asr_threads,
                       beam=config.asr_beam, workers=config.asr_workers, model_cache=config.data_dir / "models")


async def _meeting_of(request: web.Request, room: str) -> str | None:
    """Which meeting's transcript the caller may read: a moderator token reads its own meeting's (never
    another meeting of the same room); an admin key names one with `?meeting=` or gets the room's latest."""
    caller = await authenticate(request)
    if caller.is_admin_key:
        meeting = request.query.get("meeting")
        if meeting is not None and not _MEETING.match(meeting):
            raise InvalidField("meeting must be a meeting id", field="meeting")
        return meeting
    if not caller.may_moderate(room) or caller.meeting is None:
        raise Forbidden("transcripts need an admin API key or a moderator token for this meeting")
    return caller.meeting.meeting_id


async def get_transcript(request: web.Request) -> web.Response:
    room = org_name(request, request.match_info["room"])  # `org~room` outside the default organisation
    meeting = await _meeting_of(request, room)
    fmt = request.query.get("format", "vtt")
    if fmt not in FORMATS:
        raise InvalidField(f"format must be one of {', '.join(FORMATS)}", field="format")
    transcript = await request.app[TRANSCRIBE].transcript(room, meeting)
    if transcript is None:
        raise NotFound(f"no transcript for room {plain(room)!r}")
    return web.Response(text=render(transcript, fmt), content_type=FORMATS[fmt], charset="utf-8",
                        headers={"Content-Disposition":
                                 f'inline; filename="{plain(room)}-{transcript.meeting_id}.{fmt}"'})


async def get_notes(request: web.Request) -> web.Response:
    room = org_name(request, request.match_info["room"])  # `org~room` outside the default organisation
    meeting = await _meeting_of(request, room)
    fmt = request.query.get("format", "md")
    if fmt not in ("md", "json"):
        raise InvalidField("format must be md or json", field="format")
    day = request.query.get("date")
    try:
        meeting_day = date.fromisoformat(day) if day else None
    except ValueError as exc:
        raise InvalidField("date must be YYYY-MM-DD", field="date") from exc
    transcript = await request.app[TRANSCRIBE].transcript(room, meeting)
    if transcript is None:
        raise NotFound(f"no transcript for room {plain(room)!r}")
    notes = NotesWriter().write(transcript, meeting_day)
    if fmt == "json":
        return web.Response(text=notes.to_json(), content_type="application/json", charset="utf-8")
    return web.Response(text=notes.to_markdown(), content_type="text/markdown", charset="utf-8")


async def get_metrics(request: web.Request) -> web.Response:
    await require_server_admin_key(request)  # server-wide: the default organisation's admins
    service = request.app[TRANSCRIBE]
    return web.json_response({"rooms": service.live_rooms(), **service.engine.snapshot()})


def setup_transcribe(app: web.Application, config: Config) -> TranscribeService:
    """Registers the routes and the caption service (kept in `app[TRANSCRIBE]`); the model loads lazily in a
    thread on first use, and app cleanup finalises live transcripts and stops the inference pool."""
    # The front door's store when it set one up (it opens and closes it), else one of our own.
    own_db = None if DATABASE in app else Database.for_config(config.database_url, config.data_dir)
    db = app[DATABASE] if own_db is None else own_db
    service = TranscribeService(settings_from_config(config), TranscriptStore(db))
    app[TRANSCRIBE] = service
    app.router.add_get("/v1/rooms/{room}/transcript", get_transcript)
    app.router.add_get("/v1/rooms/{room}/notes", get_notes)
    app.router.add_get("/v1/captions/metrics", get_metrics)
    if MEETINGS in app:  # the meeting page's REST reads meetings by id from the front door's ledger
        setup_records(app, service, config.attendees_see_records, config.notes_autopublish_seconds)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if own_db is not None:
            await own_db.open()
        yield
        if RECORDS in app:
            app[RECORDS].close()
        await app[TRANSCRIBE].close()
        if own_db is not None:
            await own_db.close()

    app.cleanup_ctx.append(lifetime)
    return service
