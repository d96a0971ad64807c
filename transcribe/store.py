"""Transcripts on disk: data_dir/transcripts/<room>/<meeting id>/ (transcript.json and rendered files)."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from common.private_files import private_dir, private_file
from transcribe.transcript import Transcript

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class TranscriptStore:
    """Blocking file I/O: call from a thread (the room transcriber does)."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "transcripts"
        self._log = logging.getLogger(f"convene.transcribe.store.{id(self):x}")

    def meeting_dir(self, room: str, meeting_id: str) -> Path:
        if not _SAFE.match(room) or not _SAFE.match(meeting_id) or ".." in room or ".." in meeting_id:
            raise ValueError(f"unsafe room or meeting id: {room!r} {meeting_id!r}")
        return self.root / room / meeting_id

    def save(self, transcript: Transcript, extra: dict[str, str] | None = None) -> Path:
        """Writes transcript.json (atomically) and any rendered files given as {filename: text}."""
        directory = self.meeting_dir(transcript.room, transcript.meeting_id)
        # What was said in a meeting: the whole tree is the server user's alone (0700 dirs, 0600 files).
        private_dir(self.root)
        private_dir(directory)
        files = {"transcript.json": json.dumps(transcript.to_dict(), indent=1), **(extra or {})}
        for name, text in files.items():
            tmp = private_file(directory / f".{name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, directory / name)
        return directory

    def meetings(self, room: str) -> list[str]:
        if not _SAFE.match(room):
            return []
        base = self.root / room
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "transcript.json").is_file())

    def load(self, room: str, meeting_id: str | None = None) -> Transcript | None:
        """The given meeting, or the room's latest one."""
        if meeting_id is None:
            meetings = self.meetings(room)
            if not meetings:
                return None
            meeting_id = meetings[-1]
        try:
            path = self.meeting_dir(room, meeting_id) / "transcript.json"
        except ValueError:
            return None
        if not path.is_file():
            return None
        return Transcript.from_dict(json.loads(path.read_text(encoding="utf-8")))
