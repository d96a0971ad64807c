"""The meeting ledger: every meeting a room has held, whether it is over, and who was removed from it.

A room is a name; a meeting is one occasion in it, with an id nobody can guess (128 random bits). Tokens name
the meeting, so a token of a meeting that ended reaches nothing, even when the room's name is used again. The
ledger is durable (SQLite in the data dir, shared by the worker processes and the CLI): after a restart a
meeting that was not ended can be resumed with the tokens people hold, and an ended one stays ended.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import MeetingEnded, RemovedFromMeeting
from common.private_files import private_sqlite
from identity.secrets_store import load_or_create_secret
from identity.tokens import AccessToken, Grants, TokenIssuer

log = logging.getLogger("convene.identity.meetings")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meetings (meeting_id TEXT PRIMARY KEY, room TEXT NOT NULL,"
    " started_at REAL NOT NULL, guests INTEGER NOT NULL, ended_at REAL, end_reason TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS meetings_by_room ON meetings (room, started_at)",
    # One row per removed identity: tokens issued up to `removed_at` no longer join that meeting.
    "CREATE TABLE IF NOT EXISTS removals (meeting_id TEXT NOT NULL, identity TEXT NOT NULL,"
    " removed_at REAL NOT NULL, PRIMARY KEY (meeting_id, identity))",
)


def new_meeting_id() -> str:
    return "m_" + secrets.token_urlsafe(16)  # 128 bits


@dataclass(frozen=True)
class Meeting:
    meeting_id: str
    room: str
    started_at: float
    guests: bool  # whether `POST /v1/rooms/{room}/join` admits people with just a name
    ended_at: float | None = None
    end_reason: str = ""

    @property
    def live(self) -> bool:
        return self.ended_at is None

    def to_wire(self) -> dict[str, object]:
        return {"meeting_id": self.meeting_id, "room": self.room, "started_at": self.started_at,
                "ended_at": self.ended_at, "guests": self.guests}


def _meeting(row: tuple[object, ...]) -> Meeting:
    return Meeting(meeting_id=str(row[0]), room=str(row[1]), started_at=float(row[2]),  # type: ignore[arg-type]
                   guests=bool(row[3]), ended_at=None if row[4] is None else float(row[4]),  # type: ignore[arg-type]
                   end_reason=str(row[5] or ""))


class MeetingLedger:
    """Blocking SQLite, but each call is one indexed statement (tens of µs): cheap enough on the loop."""

    def __init__(self, data_dir: Path) -> None:
        self.path = private_sqlite(data_dir / "meetings.db")  # 0600, and so its -wal/-shm
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._ended: set[str] = set()  # an ended meeting never comes back: safe to remember

    def close(self) -> None:
        with self._lock:
            self._db.close()

    _COLUMNS = "meeting_id, room, started_at, guests, ended_at, end_reason"

    def get(self, meeting_id: str) -> Meeting | None:
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM meetings WHERE meeting_id = ?",
                                   (meeting_id,)).fetchone()
        return _meeting(row) if row else None

    def live(self, room: str) -> Meeting | None:
        """The room's meeting that has not ended, if any."""
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM meetings WHERE room = ? AND ended_at IS NULL"
                                   " ORDER BY started_at DESC LIMIT 1", (room,)).fetchone()
        return _meeting(row) if row else None

    def live_or_start(self, room: str, guests: bool) -> tuple[Meeting, bool]:
        """The room's live meeting, or a new one (True). One transaction: two processes agree on one meeting."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(f"SELECT {self._COLUMNS} FROM meetings WHERE room = ? AND ended_at IS NULL"
                                       " ORDER BY started_at DESC LIMIT 1", (room,)).fetchone()
                if row is not None:
                    self._db.execute("COMMIT")
                    return _meeting(row), False
                meeting = Meeting(new_meeting_id(), room, time.time(), guests)
                self._db.execute("INSERT INTO meetings (meeting_id, room, started_at, guests) VALUES (?, ?, ?, ?)",
                                 (meeting.meeting_id, room, meeting.started_at, int(guests)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        log.info("room %s: meeting %s started", room, meeting.meeting_id[:6])
        return meeting, True

    def end(self, meeting_id: str, reason: str) -> bool:
        """Idempotent; True when this call ended it."""
        with self._lock:
            cursor = self._db.execute("UPDATE meetings SET ended_at = ?, end_reason = ? WHERE meeting_id = ?"
                                      " AND ended_at IS NULL", (time.time(), reason, meeting_id))
        self._ended.add(meeting_id)
        return cursor.rowcount > 0

    def unended(self) -> list[Meeting]:
        with self._lock:
            rows = self._db.execute(f"SELECT {self._COLUMNS} FROM meetings WHERE ended_at IS NULL").fetchall()
        return [_meeting(r) for r in rows]

    def of_room(self, room: str, limit: int = 100) -> list[Meeting]:
        with self._lock:
            rows = self._db.execute(f"SELECT {self._COLUMNS} FROM meetings WHERE room = ?"
                                    " ORDER BY started_at DESC LIMIT ?", (room, limit)).fetchall()
        return [_meeting(r) for r in rows]

    def recent(self, limit: int = 100) -> list[Meeting]:
        """Every room's meetings, newest first (the admin's "my meetings" list)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {self._COLUMNS} FROM meetings ORDER BY started_at DESC LIMIT ?",
                                    (limit,)).fetchall()
        return [_meeting(r) for r in rows]

    def remove(self, meeting_id: str, identity: str) -> None:
        """Holds every token of `identity` issued until now out of this meeting (a new invite still works)."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO removals VALUES (?, ?, ?)", (meeting_id, identity, time.time()))

    def check(self, token: AccessToken) -> Meeting:
        """The live meeting a meeting token reaches; `MeetingEnded` or `RemovedFromMeeting` otherwise."""
        meeting_id = token.meeting or ""
        if meeting_id in self._ended:
            raise MeetingEnded("this meeting has ended")
        meeting = self.get(meeting_id)
        if meeting is None or meeting.room != token.room:
            raise MeetingEnded("this meeting does not exist (or has ended)")
        if not meeting.live:
            self._ended.add(meeting_id)
            raise MeetingEnded("this meeting has ended")
        with self._lock:
            row = self._db.execute("SELECT removed_at FROM removals WHERE meeting_id = ? AND identity = ?",
                                   (meeting_id, token.identity)).fetchone()
        if row is not None and token.issued_at <= float(row[0]):
            raise RemovedFromMeeting("a moderator removed you from this meeting")
        return meeting


def invite(data_dir: Path, room: str, identity: str, name: str = "", grants: Grants | None = None,
           ttl_seconds: int = 6 * 3600) -> str:
    """A token for the room's live meeting (started, invite-only, when there is none), made without a running
    server: the ledger and the secret are in the data dir (`convene token`, the benchmarks)."""
    ledger = MeetingLedger(data_dir)
    try:
        meeting, _ = ledger.live_or_start(room, guests=False)
    finally:
        ledger.close()
    issuer = TokenIssuer(load_or_create_secret(data_dir))
    return issuer.mint(room, identity, name=name or identity, grants=grants, ttl_seconds=ttl_seconds,
                       meeting=meeting.meeting_id)
