"""Transcript renderings: WebVTT (<v Speaker> voice spans), SRT, JSON, plain text and Markdown.

Every cue carries relative times (since the meeting started) and its wall-clock time (UTC)."""

from __future__ import annotations

import json

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
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("-->", "--&gt;")


def _cue_end(seg: Segment) -> float:
    return max(seg.end, seg.start + 0.3)


def _wall(t: Transcript, seconds: float) -> str:
    return t.wall(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_vtt(t: Transcript) -> str:
    lines = ["WEBVTT", "", f"NOTE room {t.room}, meeting {t.meeting_id}, started {_wall(t, 0)}", ""]
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
        lines += [str(i), f"{clock(seg.start, ',')} --> {clock(_cue_end(seg), ',')}", f"{seg.name}: {seg.text}", ""]
    return "\n".join(lines)


def render_json(t: Transcript) -> str:
    body = {
        "room": t.room,
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
    lines = [f"Transcript of {t.room}, started {_wall(t, 0)}", ""]
    for s in t.segments():
        lines.append(f"[{clock(s.start)[:8]} | {t.wall(s.start).strftime('%H:%M:%S')}] {s.name}: {s.text}")
    return "\n".join(lines) + "\n"


def render_md(t: Transcript) -> str:
    lines = [f"# Transcript: {t.room}", "", f"Started {_wall(t, 0)} (times are UTC; offsets from the start).", ""]
    for s in t.segments():
        lines.append(f"- **{s.name}** `{clock(s.start)[:8]}` ({t.wall(s.start).strftime('%H:%M:%S')}): {s.text}")
    return "\n".join(lines) + "\n"


def render(t: Transcript, fmt: str) -> str:
    renderers = {"vtt": render_vtt, "srt": render_srt, "json": render_json, "txt": render_txt, "md": render_md}
    if fmt not in renderers:
        raise ValueError(f"unknown transcript format {fmt!r}")
    return renderers[fmt](t)
