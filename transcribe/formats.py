"""Transcript renderings: WebVTT (<v Speaker> voice spans), SRT, JSON, plain text and Markdown.

Every cue carries relative times (since the meeting started) and its wall-clock time (UTC).

Names and spoken text come from people, so each format escapes what could end a cue or start a new
line-level structure (a cue, a heading, a list item). Names are refused with newlines where they enter,
but one signed before that check may still arrive, so every renderer first makes text one line."""

from __future__ import annotations

import json
import re

from common.names import one_line
from identity.orgs import plain
from transcribe.transcript import Segment, Transcript

FORMATS = {
    "vtt": "text/vtt",
    "srt": "application/x-subrip",
    "json": "application/json",
    "txt": "text/plain",
    "md": "text/markdown",
}


def clock(seconds: float, separator: str = ".") -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def _vtt_escape(text: str) -> str:
    """Cue text or a voice annotation: one line (a blank line ends a cue), and `&`, `<`, `>` as the
    WebVTT character references (so no `-->` and no tag or `<v>` annotation can be closed early)."""
    return one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _srt_escape(text: str) -> str:
    """SRT has no escapes: one line (a blank line ends a cue), and `-->` broken up so that no
    reader takes the line for a timing line."""
    return one_line(text).replace("-->", "-- >")


# Markdown: characters that open inline structure anywhere (emphasis, code, links, HTML, tables,
# strikethrough, backslash escapes themselves) and `&` where it would start an entity.
_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~])|&(?=#?\w+;)")
# What opens a block when it starts a line (or a list item's content): heading, quote, list item,
# thematic break, setext underline; an ordered list marker is digits and then `.` or `)`.
_MD_BLOCK_START = re.compile(r"#|>|[-+*=]|\d{1,9}(?=[.)])")


def md_escape(text: str) -> str:
    """`text` as one line of Markdown that renders as itself, also at the start of a line or list
    item: no heading, list item, quote, code, link, HTML or emphasis can come out of it. Stripped,
    since leading spaces could make an indented code block."""
    flat = _MD_INLINE.sub(lambda m: "\\" + (m.group(1) or "&"), one_line(text).strip())
    block = _MD_BLOCK_START.match(flat)
    if block is None:
        return flat
    end = block.end()
    if flat[0].isdigit():  # "1." -> "1\.": the escape goes on the delimiter after the number
        return f"{flat[:end]}\\{flat[end:]}"
    return "\\" + flat


def _cue_end(seg: Segment) -> float:
    return max(seg.end, seg.start + 0.3)


def _wall(t: Transcript, seconds: float) -> str:
    return t.wall(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_vtt(t: Transcript) -> str:
    lines = ["WEBVTT", "", f"NOTE room {plain(t.room)}, meeting {t.meeting_id}, started {_wall(t, 0)}", ""]
    for i, seg in enumerate(t.segments(), 1):
        lines += [
            f"{i} {_wall(t, seg.start)}",
            f"{clock(seg.start)} --> {clock(_cue_end(seg))}",
            f"<v {_vtt_escape(seg.name)}>{_vtt_escape(seg.text)}</v>",
            "",
        ]
    return "\n".join(lines)


def render_srt(t: Transcript) -> str:
    lines: list[str] = []
    for i, seg in enumerate(t.segments(), 1):
        lines += [str(i), f"{clock(seg.start, ',')} --> {clock(_cue_end(seg), ',')}",
                  f"{_srt_escape(seg.name)}: {_srt_escape(seg.text)}", ""]
    return "\n".join(lines)


def render_json(t: Transcript) -> str:
    body = {
        "room": plain(t.room),
        "meeting_id": t.meeting_id,
        "started_at": _wall(t, 0),
        "ended_at": _wall(t, t.ended_at - t.started_at) if t.ended_at else None,
        "attendees": [
            {"participant_id": a.participant_id, "name": a.name, "identity": a.identity} for a in t.attendees.values()
        ],
        "segments": [
            {
                "id": i,
                "participant_id": s.participant_id,
                "name": s.name,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "wall_start": t.wall(s.start).isoformat(timespec="milliseconds"),
                "wall_end": t.wall(s.end).isoformat(timespec="milliseconds"),
                "text": s.text,
            }
            for i, s in enumerate(t.segments(), 1)
        ],
    }
    return json.dumps(body, indent=1)


def render_txt(t: Transcript) -> str:
    lines = [f"Transcript of {plain(t.room)}, started {_wall(t, 0)}", ""]
    for s in t.segments():
        lines.append(f"[{clock(s.start)[:8]} | {t.wall(s.start).strftime('%H:%M:%S')}] {one_line(s.name)}: "
                     f"{one_line(s.text)}")
    return "\n".join(lines) + "\n"


def render_md(t: Transcript) -> str:
    lines = [f"# Transcript: {plain(t.room)}", "", f"Started {_wall(t, 0)} (times are UTC; offsets from the start).", ""]
    for s in t.segments():
        lines.append(f"- **{md_escape(s.name)}** `{clock(s.start)[:8]}` ({t.wall(s.start).strftime('%H:%M:%S')}): "
                     f"{md_escape(s.text)}")
    return "\n".join(lines) + "\n"


def render(t: Transcript, fmt: str) -> str:
    renderers = {"vtt": render_vtt, "srt": render_srt, "json": render_json, "txt": render_txt, "md": render_md}
    if fmt not in renderers:
        raise ValueError(f"unknown transcript format {fmt!r}")
    return renderers[fmt](t)
