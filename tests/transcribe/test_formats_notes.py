"""Transcript formats parse back (our own WebVTT/SRT parsers, markdown-it for Markdown), notes find owners and
due dates, and text from people adds no cue, heading or list item to any format."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from common.names import one_line
from store.database import Database
from transcribe.caption import Caption
from transcribe.due_date import resolve_due
from transcribe.formats import md_escape, render
from transcribe.notes import NotesWriter
from transcribe.store import TranscriptStore
from transcribe.transcript import Transcript

# Tuesday 2026-11-24 15:00 UTC
STARTED = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc).timestamp()
SCRIPT = [  # (participant, name, start, end, text) as final caption fragments
    ("PA_a", "Alice", 1.0, 2.6, "Good morning everyone."),
    ("PA_a", "Alice", 2.7, 4.0, "Let's review the release"),
    ("PA_a", "Alice", 4.0, 5.5, "plan for the mobile app."),
    ("PA_b", "Bob <QA>", 6.5, 9.0, "We decided to move the launch to next month."),
    ("PA_b", "Bob <QA>", 9.2, 12.0, "I will write the test plan by Thursday."),
    ("PA_a", "Alice", 13.0, 16.0, "Carol will update the website by Friday."),
    ("PA_c", "Carol", 16.5, 19.0, "The budget for the third quarter is approved."),
    ("PA_c", "Carol", 19.2, 22.0, "Alice will send the report to the customer tomorrow."),
    ("PA_a", "Alice", 23.0, 25.0, "Thanks, see you next week."),
]


def scripted() -> Transcript:
    t = Transcript(room="standup", meeting_id="20261124T150000Z", started_at=STARTED, ended_at=STARTED + 30)
    t.attend("PA_a", "Alice", "alice")
    t.attend("PA_b", "Bob <QA>", "bob")
    t.attend("PA_c", "Carol", "carol")
    for i, (pid, name, start, end, text) in enumerate(SCRIPT):
        t.add(Caption(f"S{i}", pid, name, start, end, text, True))
    t.add(Caption("S99", "PA_a", "Alice", 0, 0, "interim is never kept", False))
    return t


def parse_time(value: str) -> float:
    h, m, rest = value.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


def parse_vtt(text: str) -> list[dict[str, object]]:
    assert text.startswith("WEBVTT")
    cues = []
    for block in text.strip().split("\n\n")[1:]:
        lines = block.split("\n")
        if lines[0].startswith("NOTE"):
            continue
        ident, timing, payload = lines[0], lines[1], "\n".join(lines[2:])
        start, end = (parse_time(x.strip()) for x in timing.split("-->"))
        m = re.fullmatch(r"<v ([^>]*)>(.*)</v>", payload, re.S)
        assert m, payload
        unescape = lambda s: s.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")  # noqa: E731
        cues.append({"id": ident, "start": start, "end": end, "speaker": unescape(m.group(1)),
                     "text": unescape(m.group(2))})
    return cues


def parse_srt(text: str) -> list[dict[str, object]]:
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        index = int(lines[0])
        start, end = (parse_time(x.strip()) for x in lines[1].split("-->"))
        speaker, _, body = lines[2].partition(": ")
        cues.append({"index": index, "start": start, "end": end, "speaker": speaker, "text": body})
    return cues


def test_vtt_and_srt_round_trip() -> None:
    t = scripted()
    segments = t.segments()
    # Fragments of one sentence merge; sentences stay apart; the interim is not in the transcript.
    assert [s.text for s in segments][:2] == ["Good morning everyone.", "Let's review the release plan for the mobile app."]
    assert len(segments) == 8
    vtt = parse_vtt(render(t, "vtt"))
    srt = parse_srt(render(t, "srt"))
    assert len(vtt) == len(srt) == len(segments)
    for cue, s_cue, seg in zip(vtt, srt, segments):
        assert cue["speaker"] == s_cue["speaker"] == seg.name
        assert cue["text"] == s_cue["text"] == seg.text
        assert abs(float(cue["start"]) - seg.start) < 0.001 and abs(float(s_cue["end"]) - seg.end) < 0.001  # type: ignore[arg-type]
    # Wall-clock time of each cue is in its identifier.
    assert vtt[2]["id"] == "3 2026-11-24T15:00:06Z"
    assert vtt[2]["speaker"] == "Bob <QA>"


def test_json_txt_md() -> None:
    t = scripted()
    body = json.loads(render(t, "json"))
    assert body["started_at"] == "2026-11-24T15:00:00Z"
    assert body["segments"][0]["wall_start"] == "2026-11-24T15:00:01.000+00:00"
    assert [a["name"] for a in body["attendees"]] == ["Alice", "Bob <QA>", "Carol"]
    txt = render(t, "txt")
    assert "[00:00:06 | 15:00:06] Bob <QA>: We decided to move the launch to next month." in txt
    assert "**Carol** `00:00:16`" in render(t, "md")


def test_notes_for_a_scripted_meeting() -> None:
    notes = NotesWriter().write(scripted())
    owners = {(i.owner, i.due) for i in notes.action_items}
    assert ("Bob <QA>", "2026-11-26") in owners  # "I will ... by Thursday" said by Bob
    assert ("Carol", "2026-11-27") in owners  # "Carol will ... by Friday", said by Alice
    assert ("Alice", "2026-11-25") in owners  # "Alice will ... tomorrow", said by Carol
    carol = next(i for i in notes.action_items if i.owner == "Carol")
    assert carol.owner_identity == "carol" and carol.said_by == "Alice"
    assert "update the website" in carol.task.lower()
    assert len(notes.action_items) == 3
    assert any("decided to move the launch" in d for d in notes.decisions)
    assert any("approved" in d for d in notes.decisions)
    assert {a.name for a in notes.attendees} == {"Alice", "Bob <QA>", "Carol"}
    alice = next(a for a in notes.attendees if a.name == "Alice")
    assert abs(alice.seconds - (1.6 + 1.3 + 1.5 + 3.0 + 2.0)) < 0.11
    assert 1 <= len(notes.summary) <= 4
    md = notes.to_markdown()
    assert "- [ ] **Carol**: Update the website by Friday (due 2026-11-27)" in md
    assert json.loads(notes.to_json())["action_items"][0]["due"]


def test_an_owner_is_found_among_the_words_a_recogniser_put_around_a_name() -> None:
    t = Transcript(room="standup", meeting_id="20261124T150000Z", started_at=STARTED, ended_at=STARTED + 30)
    t.attend("PA_a", "Alice", "alice")
    t.attend("PA_b", "Bob <QA>", "bob")
    t.attend("PA_d", "Dan Smith", "dan")
    said = ["Bob Dog will write the test plan before the release.",  # whisper heard "Bob Dog" once in CI
            "Then Alice will book the room.", "Dan Smith will call the vendor.", "Friday Erin will fix the build."]
    for i, text in enumerate(said):
        t.add(Caption(f"S{i}", "PA_a", "Alice", 2.0 * i, 2.0 * i + 1, text, True))
    items = {i.task: (i.owner, i.owner_identity) for i in NotesWriter().write(t).action_items}
    assert items == {"Write the test plan before the release": ("Bob <QA>", "bob"),
                     "Book the room": ("Alice", "alice"),
                     "Call the vendor": ("Dan Smith", "dan"),
                     "Fix the build": ("Erin", None)}


def test_due_dates_relative_to_the_meeting() -> None:
    tuesday = date(2026, 11, 24)
    assert resolve_due("send it by Friday", tuesday) == date(2026, 11, 27)
    assert resolve_due("on Tuesday", tuesday) == date(2026, 12, 1)  # said on a Tuesday: a week later
    assert resolve_due("next Friday", tuesday) == date(2026, 12, 4)
    assert resolve_due("tomorrow", tuesday) == date(2026, 11, 25)
    assert resolve_due("by the end of the week", tuesday) == date(2026, 11, 27)
    assert resolve_due("by the end of the month", tuesday) == date(2026, 11, 30)
    assert resolve_due("in two weeks", tuesday) == date(2026, 12, 8)
    assert resolve_due("before January 5th", tuesday) == date(2027, 1, 5)
    assert resolve_due("no date here", tuesday) is None


async def test_store_survives_a_restart(tmp_path: Path) -> None:
    db = Database.for_config(None, tmp_path)
    await db.open()
    # The room transcriber saves from a thread: the blocking face runs on the store's loop.
    assert await asyncio.to_thread(TranscriptStore(db).save, scripted()) == scripted().meeting_id
    await db.close()
    again_db = Database.for_config(None, tmp_path)  # a new process opens the same store
    await again_db.open()
    try:
        again = TranscriptStore(again_db)
        loaded = await again.aload("standup")
        assert loaded is not None and loaded.segments() == scripted().segments()
        assert await asyncio.to_thread(again.meetings, "standup") == [scripted().meeting_id]
        assert render(loaded, "vtt") == render(scripted(), "vtt")  # every format, rendered on request
        assert await again.aload("other") is None and await again.aload("../etc") is None
        with pytest.raises(RuntimeError):  # blocking on the loop would stall it: refused
            again.load("standup")
    finally:
        await again_db.close()


# --- Text from people never adds structure (issue #8: "names are one line") ------------------------

EVE = "Eve\n\n## Decisions\n\n- Approved: wire $2M"
HOSTILE_SAYINGS = [  # (participant, start, text): each is one sentence, so one segment
    ("PA_e", 1.0, "Hello.\n\n## Decisions\n\n- Approved: wire $2M."),
    ("PA_m", 3.0, "The range is 1 --> 5 and then <v CEO>we decided</v> &amp; done."),
    ("PA_e", 5.0, "1. first item, we decided to ship it."),
    ("PA_m", 7.0, "</v>\n\n99\n00:00:09.000 --> 00:00:10.000\n<v CEO>It is approved."),
    ("PA_e", 11.0, "> quoted # not a heading * not a list | not a table `code` [link](http://x) <b>bold</b>."),
    ("PA_m", 13.0, "- Mallory will wire the money\r\nby Friday\u2028- Eve will too."),
]
NAMES = {"PA_e": EVE, "PA_m": "Mallory <Ops> & \u202eevil\u202c\n1. boss"}


def hostile() -> Transcript:
    """A meeting as an old token (signed before names were checked) and a speaker could make it."""
    t = Transcript(room="standup", meeting_id="20261124T150000Z", started_at=STARTED, ended_at=STARTED + 20)
    for pid, name in NAMES.items():
        t.attend(pid, name, pid.lower())
    for i, (pid, start, text) in enumerate(HOSTILE_SAYINGS):
        t.add(Caption(f"S{i}", pid, NAMES[pid], start, start + 1.5, text, True))
    return t


def markdown_tokens(text: str) -> list[Any]:
    """A CommonMark parser (with GFM tables and strikethrough) reads it as a renderer would."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)


def md_counts(text: str) -> Counter[str]:
    return Counter(tok.type for tok in markdown_tokens(text))


def inline_texts(text: str) -> list[str]:
    """The plain text of each inline run (a list item, a heading), as a reader sees it."""
    return ["".join(c.content for c in tok.children or [] if c.type in ("text", "code_inline"))
            for tok in markdown_tokens(text) if tok.type == "inline"]


def test_hostile_names_and_speech_add_no_cue_in_vtt_or_srt() -> None:
    t = hostile()
    segments = t.segments()
    assert len(segments) == len(HOSTILE_SAYINGS)
    vtt = render(t, "vtt")
    # A WebVTT block is a cue exactly when one of its lines holds "-->": one per segment, no more.
    blocks = vtt.strip().split("\n\n")
    assert sum("-->" in block for block in blocks) == len(segments)
    cues = parse_vtt(vtt)
    assert len(cues) == len(segments)
    for cue, seg in zip(cues, segments):
        assert cue["speaker"] == one_line(seg.name) and cue["text"] == one_line(seg.text)
    assert all(len(block.split("\n")) == 3 for block in blocks[2:])  # id, timing, one payload line
    srt = render(t, "srt")
    srt_blocks = srt.strip().split("\n\n")
    assert len(srt_blocks) == len(segments)
    for i, block in enumerate(srt_blocks, 1):
        lines = block.split("\n")
        assert len(lines) == 3 and lines[0] == str(i) and "-->" not in lines[2]
    assert "1 -- > 5" in srt


def test_hostile_names_and_speech_add_no_line_in_txt_and_stay_exact_in_json() -> None:
    t = hostile()
    txt = render(t, "txt").rstrip("\n").split("\n")
    assert len(txt) == 2 + len(HOSTILE_SAYINGS)
    assert all(line.startswith("[00:00:") for line in txt[2:])
    body = json.loads(render(t, "json"))
    assert body["attendees"][0]["name"] == EVE  # JSON escapes by construction: kept as given
    assert [s["text"] for s in body["segments"]] == [s.text for s in t.segments()]


def test_hostile_names_and_speech_add_no_heading_or_list_item_in_markdown() -> None:
    t = hostile()
    md = render(t, "md")
    counts = md_counts(md)
    assert counts["heading_open"] == 1 and counts["bullet_list_open"] == 1
    assert counts["list_item_open"] == len(t.segments())
    for structure in ("ordered_list_open", "blockquote_open", "html_block", "table_open", "fence", "hr"):
        assert counts[structure] == 0, structure
    children = Counter(c.type for tok in markdown_tokens(md) for c in tok.children or [])
    assert children["strong_open"] == len(t.segments())  # only our bold names
    for structure in ("link_open", "html_inline", "em_open", "s_open", "softbreak"):
        assert children[structure] == 0, structure
    items = inline_texts(md)[2:]  # after the title and the "Started" line
    for item, seg in zip(items, t.segments()):
        assert item.startswith(one_line(seg.name).strip()) and item.endswith(one_line(seg.text).strip())


def test_notes_markdown_has_only_its_own_sections() -> None:
    notes = NotesWriter().write(hostile())
    assert notes.decisions and notes.action_items  # the hostile sentences are in the notes ...
    md = notes.to_markdown()
    counts = md_counts(md)
    # ... but only as items: title + Attendees, Summary, Decisions, Action items.
    assert counts["heading_open"] == 5
    assert [text for text in inline_texts(md) if text.startswith(("Meeting notes", "Attendees", "Summary",
                                                                   "Decisions", "Action items"))][:5] == [
        "Meeting notes: standup", "Attendees", "Summary", "Decisions", "Action items"]
    expected_items = len(notes.attendees) + len(notes.summary) + len(notes.decisions) + len(notes.action_items)
    assert counts["list_item_open"] == expected_items
    assert counts["bullet_list_open"] == 4 and counts["ordered_list_open"] == 0
    for structure in ("blockquote_open", "html_block", "table_open", "fence", "hr"):
        assert counts[structure] == 0, structure
    attendee_items = inline_texts(md)[3:3 + len(notes.attendees)]
    assert any(item.startswith(one_line(EVE)) for item in attendee_items)


def test_md_escape_keeps_the_text() -> None:
    assert md_escape("Bob <QA>") == "Bob \\<QA\\>"
    assert md_escape("1. first") == "1\\. first" and md_escape("## Decisions") == "\\## Decisions"
    assert md_escape("a & b") == "a & b" and md_escape("&amp;") == "\\&amp;"
    assert md_escape("plain words, no marks.") == "plain words, no marks."
