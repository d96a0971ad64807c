"""The transcriber's side of one room: taps per audio publication, the transcript, caption events out.

The SFU drives it with five calls (see `RoomCaptions`); caption events go out through `emit`, which the
signaling layer broadcasts to everyone in the room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from transcribe.caption import Caption
from transcribe.engine import AsrEngine
from transcribe.notes import MeetingNotes, NotesWriter
from transcribe.opus_tap import OpusAudioTap, RtpLike
from transcribe.settings import ROOM_LANGUAGES, room_language
from transcribe.store import TranscriptStore
from transcribe.stream import SpeakerStream
from transcribe.transcript import Transcript

Emit = Callable[[dict[str, Any]], None]
# post_task(channel, title, assignee_login, due, author_login): the chat sidecar's task poster.
PostTask = Callable[[str, str, str | None, str | None, str], Awaitable[Any]]
SAVE_INTERVAL_SECONDS = 10.0


class RoomCaptions(Protocol):
    """What the SFU calls; nothing else is needed to caption a room."""

    def on_participant(self, participant_id: str, name: str, identity: str = "") -> None: ...

    def on_participant_left(self, participant_id: str) -> None: ...

    def add_audio(self, publication_id: str, participant_id: str) -> "AudioSink": ...

    def remove_audio(self, publication_id: str) -> None: ...

    def set_enabled(self, enabled: bool) -> None: ...

    def set_language(self, language: str) -> None: ...

    async def close(self) -> str | None: ...


@dataclass
class AudioSink:
    """The packet sink handed to the SFU for one audio publication (`write_rtp`, `close`).
    While captions are off it drops packets without decoding them."""

    publication_id: str
    participant_id: str
    owner: "RoomTranscriber"
    tap: OpusAudioTap | None = None
    closed: bool = False
    packets: int = field(default=0)

    def write_rtp(self, packet: RtpLike) -> None:
        self.packets += 1
        if self.tap is not None:
            self.tap.write_rtp(packet)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.owner.remove_audio(self.publication_id)


async def post_action_items(notes: MeetingNotes, post_task: PostTask, channel: str, author_login: str) -> int:
    """Posts every action item as a chat task (one call); returns how many were posted."""
    for item in notes.action_items:
        await post_task(channel, item.task, item.owner_identity, item.due, author_login)
    return len(notes.action_items)


class RoomTranscriber:
    def __init__(self, room_name: str, engine: AsrEngine, emit: Emit, store: TranscriptStore | None,
                 enabled: bool = True, started_at: float | None = None, meeting_id: str | None = None,
                 language: str | None = None) -> None:
        self.room_name = room_name
        self._engine = engine
        self._emit = emit
        self._store = store
        self._enabled = enabled
        self._log = logging.getLogger(f"convene.transcribe.room.{room_name}")
        self._t0_wall = started_at if started_at is not None else time.time()
        self._t0 = time.monotonic() - (time.time() - self._t0_wall)
        # The meeting's own id (unguessable) where the room has one; a timestamp for a bare transcriber.
        meeting_id = meeting_id or datetime.fromtimestamp(self._t0_wall, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.transcript = Transcript(room=room_name, meeting_id=meeting_id, started_at=self._t0_wall)
        self._names: dict[str, str] = {}
        self._sinks: dict[str, AudioSink] = {}
        self._closing_streams: set[asyncio.Task[None]] = set()
        self._save_handle: asyncio.TimerHandle | None = None
        self._save_task: asyncio.Task[None] | None = None
        self._closed = False
        self.notes: MeetingNotes | None = None
        self._language = room_language(language if language is not None else engine.settings.language)

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def language(self) -> str:
        """"en", "zh" or "auto" (each speaker's language detected on their first seconds of speech)."""
        return self._language

    def now(self) -> float:
        """Meeting seconds."""
        return time.monotonic() - self._t0

    # ---- room events ----

    def on_participant(self, participant_id: str, name: str, identity: str = "") -> None:
        """A participant joined (or was renamed)."""
        self._names[participant_id] = name
        self.transcript.attend(participant_id, name, identity, at=round(self.now(), 3))
        for sink in self._sinks.values():
            if sink.participant_id == participant_id and sink.tap is not None:
                sink.tap.stream.name = name

    def on_participant_left(self, participant_id: str) -> None:
        for pub in [p for p, s in self._sinks.items() if s.participant_id == participant_id]:
            self.remove_audio(pub)
        self.transcript.leave(participant_id, round(self.now(), 3))

    def add_audio(self, publication_id: str, participant_id: str) -> AudioSink:
        """A sink for one Opus audio publication; give it every RTP packet of that publication."""
        sink = self._sinks.get(publication_id)
        if sink is None or sink.closed:
            sink = AudioSink(publication_id, participant_id, self)
            self._sinks[publication_id] = sink
        if self._enabled and not self._closed and sink.tap is None:
            sink.tap = self._new_tap(publication_id, participant_id)
        return sink

    def remove_audio(self, publication_id: str) -> None:
        sink = self._sinks.pop(publication_id, None)
        if sink is not None:
            sink.closed = True
            self._stop_tap(sink)

    def set_enabled(self, enabled: bool) -> None:
        """Moderator switch: off closes every tap (what was said is finalised), on starts them again."""
        if enabled == self._enabled:
            return
        self._enabled = enabled
        for sink in self._sinks.values():
            if enabled and sink.tap is None and not self._closed:
                sink.tap = self._new_tap(sink.publication_id, sink.participant_id)
            elif not enabled:
                self._stop_tap(sink)

    def set_language(self, language: str) -> None:
        """The room's spoken language (at creation or a moderator's switch mid-meeting): every speaker's next
        inference uses it; `auto` detects each speaker's language again."""
        if language not in ROOM_LANGUAGES:
            raise ValueError(f"room language must be one of {ROOM_LANGUAGES}")
        self._language = language
        for sink in self._sinks.values():
            if sink.tap is not None:
                sink.tap.stream.set_language(language)

    async def close(self) -> str | None:
        """Finalises every stream, writes the transcript to the store; returns its meeting id."""
        self._closed = True
        for sink in list(self._sinks.values()):
            self._stop_tap(sink)
        if self._closing_streams:
            await asyncio.gather(*self._closing_streams, return_exceptions=True)
        if self._save_handle is not None:
            self._save_handle.cancel()
        if self._save_task is not None:
            await asyncio.gather(self._save_task, return_exceptions=True)
        self.transcript.ended_at = time.time()
        for pid in self.transcript.attendees:
            if self.transcript.attendees[pid].left is None:
                self.transcript.leave(pid, round(self.now(), 3))
        self.notes = NotesWriter().write(self.transcript)
        if self._store is None or not (self.transcript.attendees or self.transcript.captions):
            return None  # a meeting nobody attended leaves no folder behind (anonymous joins must not pile up)
        return await asyncio.get_running_loop().run_in_executor(None, self._save_all, self.notes)

    async def publish_notes(self, post_task: PostTask, channel: str, author_login: str = "convene-captions") -> int:
        """Posts the action items of the closed meeting as chat tasks (call after `close`)."""
        if self.notes is None:
            self.notes = NotesWriter().write(self.transcript)
        return await post_action_items(self.notes, post_task, channel, author_login)

    # ---- internals ----

    def _new_tap(self, publication_id: str, participant_id: str) -> OpusAudioTap:
        name = self._names.get(participant_id, participant_id)
        stream = SpeakerStream(self._engine, publication_id, participant_id, name, self._on_caption,
                               offset=self.now(), language=self._language)
        self._log.info("captioning %s (%s)", publication_id, name)
        return OpusAudioTap(stream)

    def _stop_tap(self, sink: AudioSink) -> None:
        tap, sink.tap = sink.tap, None
        if tap is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(tap.aclose())
        self._closing_streams.add(task)
        task.add_done_callback(self._closing_streams.discard)

    def _on_caption(self, caption: Caption) -> None:
        self.transcript.add(caption)
        try:
            self._emit(caption.to_event())
        except Exception:
            self._log.exception("caption broadcast failed")
        if caption.final and caption.text and self._store is not None and self._save_handle is None \
                and not self._closed:
            self._save_handle = asyncio.get_running_loop().call_later(SAVE_INTERVAL_SECONDS, self._save_soon)

    def _save_soon(self) -> None:
        """Saves the live transcript now and then, off the loop, so a crash loses little."""
        self._save_handle = None
        if self._store is None or (self._save_task is not None and not self._save_task.done()):
            return
        snapshot = Transcript.from_dict(self.transcript.to_dict())
        store = self._store
        self._save_task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(lambda: None if store.save(snapshot) is None else None))

    def _save_all(self, notes: MeetingNotes) -> str:
        # The formats and the notes are rendered from the stored transcript when asked for.
        assert self._store is not None
        return self._store.save(self.transcript)
