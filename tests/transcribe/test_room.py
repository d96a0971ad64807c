"""A room transcriber fed Opus RTP by two participants taking turns: events, attribution, stored notes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from tests.transcribe.conftest import ALICE_TEXT, BOB_TEXT
from tests.transcribe.opus_rtp import opus_rtp_packets
from tests.transcribe.speech import SpeechClip
from store.database import Database
from transcribe.engine import AsrEngine
from transcribe.formats import render
from transcribe.room import RoomTranscriber
from transcribe.store import TranscriptStore
from transcribe.wer import word_error_rate


async def test_room_transcriber_two_speakers(engine: AsrEngine, alice_clip: SpeechClip, bob_clip: SpeechClip,
                                             tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    db = Database.for_config(None, tmp_path)
    await db.open()
    store = TranscriptStore(db)
    room = RoomTranscriber("standup", engine, events.append, store)
    room.on_participant("PA_a", "Alice", identity="alice")
    room.on_participant("PA_b", "Bob", identity="bob")
    sink_a = room.add_audio("TR_a", "PA_a")
    sink_b = room.add_audio("TR_b", "PA_b")

    # Alice talks while Bob's microphone sends silence, then the other way round (no DTX here).
    silence_a = np.zeros(len(bob_clip.samples), np.int16)
    silence_b = np.zeros(len(alice_clip.samples), np.int16)
    packets_a = opus_rtp_packets(np.concatenate([alice_clip.samples, silence_a]), ssrc=1)
    packets_b = opus_rtp_packets(np.concatenate([silence_b, bob_clip.samples]), ssrc=2)
    for i, (pa, pb) in enumerate(zip(packets_a, packets_b)):
        sink_a.write_rtp(pa)
        sink_b.write_rtp(pb)
        if i % 12 == 0:
            assert sink_a.tap is not None and sink_b.tap is not None
            await sink_a.tap.drain()
            await sink_b.tap.drain()
    sink_b.close()  # Bob unpublishes: his stream is finalised
    stored_as = await room.close()

    assert all(e["type"] == "caption" for e in events)
    assert set(events[0]) == {"type", "segment_id", "participant_id", "name", "start", "end", "text", "final",
                              "language", "beta"}
    # English captions, not labelled beta (only Chinese is, until measured on real speech).
    assert {(e["language"], e["beta"]) for e in events} == {("en", False)}
    said_a = " ".join(e["text"] for e in events if e["final"] and e["participant_id"] == "PA_a")
    said_b = " ".join(e["text"] for e in events if e["final"] and e["participant_id"] == "PA_b")
    assert word_error_rate(ALICE_TEXT, said_a) < 0.15, said_a
    assert word_error_rate(BOB_TEXT, said_b) < 0.2, said_b
    assert {e["name"] for e in events if e["participant_id"] == "PA_b"} == {"Bob"}

    assert stored_as == room.transcript.meeting_id
    # In the store: a new process (another Database on the same file) reads it, and renders every format.
    again = Database.for_config(None, tmp_path)
    await again.open()
    reloaded = await TranscriptStore(again).aload("standup")
    await again.close()
    await db.close()
    assert reloaded is not None and len(reloaded.captions) == len(room.transcript.captions)
    assert "<v Bob>" in render(reloaded, "vtt")
    assert not (tmp_path / "transcripts").exists()

    notes = room.notes
    assert notes is not None
    owners = {i.owner for i in notes.action_items}
    assert {"Alice", "Bob"} <= owners, notes.action_items  # "I will prepare…" (Alice), "Bob will write…"
    alice_item = next(i for i in notes.action_items if i.owner == "Alice")
    assert alice_item.owner_identity == "alice" and "slides" in alice_item.task
    assert [a.name for a in notes.attendees][:2] and {a.name for a in notes.attendees} == {"Alice", "Bob"}

    posted: list[tuple[str, str, str | None, str | None, str]] = []

    async def post_task(channel: str, title: str, assignee: str | None, due: str | None, author: str) -> None:
        posted.append((channel, title, assignee, due, author))

    assert await room.publish_notes(post_task, "standup") == len(notes.action_items)
    assert ("standup", alice_item.task, "alice", alice_item.due, "convene-captions") in posted


async def test_captions_switched_off_decode_nothing(engine: AsrEngine, alice_clip: SpeechClip) -> None:
    events: list[dict[str, Any]] = []
    room = RoomTranscriber("quiet", engine, events.append, None, enabled=False)
    room.on_participant("PA_a", "Alice")
    sink = room.add_audio("TR_a", "PA_a")
    for p in opus_rtp_packets(alice_clip.samples[: 48000 * 3]):
        sink.write_rtp(p)
    await asyncio.sleep(0.3)
    assert sink.tap is None and events == []
    room.set_enabled(True)
    assert sink.tap is not None
    room.set_enabled(False)
    assert sink.tap is None
    assert await room.close() is None


async def test_a_meeting_nobody_attended_stores_nothing(engine: AsrEngine, tmp_path: Path) -> None:
    db = Database.for_config(None, tmp_path)
    await db.open()
    try:
        store = TranscriptStore(db)
        room = RoomTranscriber("empty", engine, lambda event: None, store, enabled=False,
                               meeting_id="m_" + "a" * 22)
        assert await room.close() is None
        assert await store.ameetings("empty") == []
    finally:
        await db.close()
