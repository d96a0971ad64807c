"""The meeting ledger: every meeting a room has held, whether it is over, and who was removed from it.

A room is a name; a meeting is one occasion in it, with an id nobody can guess (128 random bits). Tokens name
the meeting, so a token of a meeting that ended reaches nothing, even when the room's name is used again. The
ledger is durable (the store's `meetings` and `meeting_removals`, shared by every server process and the CLI):
after a restart a meeting that was not ended can be resumed with the tokens people hold, and an ended one stays
ended. Every call reads the store; only "ended" is remembered in the process, because it never changes back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from audit import AuditEvent, Recorder
from common.errors import MeetingEnded, RemovedFromMeeting
from identity.orgs import org_of, plain
from identity.secrets_store import server_secret
from identity.tokens import AccessToken, Grants, TokenIssuer
from store.database import Database
from store.schema import meeting_removals, meetings

log = logging.getLogger("convene.identity.meetings")


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
    started_by: str | None = None  # the signed-in person who started it (None: a guest, an API key, the CLI)
    organizer: str | None = None  # a scheduled meeting's organiser (identity/schedule.py)

    def moderated_by(self, login: str) -> bool:
        """Whether `login`, signed in, moderates this meeting as its starter or organiser (also on rejoining)."""
        return login in (self.started_by, self.organizer)

    @property
    def live(self) -> bool:
        return self.ended_at is None

    @property
    def org(self) -> str:
        """Its organisation: `room` is the server-internal name, `org~room` outside `default` (identity/orgs.py)."""
        return org_of(self.room)

    def to_wire(self) -> dict[str, object]:
        return {"meeting_id": self.meeting_id, "room": plain(self.room), "started_at": self.started_at,
                "ended_at": self.ended_at, "guests": self.guests}


def _meeting(row: Any) -> Meeting:
    return Meeting(meeting_id=row.meeting_id, room=row.room, started_at=float(row.started_at),
                   guests=bool(row.guests), ended_at=None if row.ended_at is None else float(row.ended_at),
                   end_reason=row.end_reason or "", started_by=row.started_by, organizer=row.organizer)


def _live_of(room: str) -> Any:
    return (select(meetings).where(meetings.c.room == room, meetings.c.ended_at.is_(None))
            .order_by(meetings.c.started_at.desc()).limit(1))


class MeetingLedger:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._ended: set[str] = set()  # an ended meeting never comes back: safe to remember
        self.audit = Recorder.on(db)  # meeting start and end; the front door's moderator actions use it too

    async def _one(self, stmt: Any) -> Meeting | None:
        row = await self.db.first(stmt)
        return _meeting(row) if row is not None else None

    async def _many(self, stmt: Any) -> list[Meeting]:
        return [_meeting(r) for r in await self.db.all(stmt)]

    async def get(self, meeting_id: str) -> Meeting | None:
        return await self._one(select(meetings).where(meetings.c.meeting_id == meeting_id))

    async def live(self, room: str) -> Meeting | None:
        """The room's meeting that has not ended, if any."""
        return await self._one(_live_of(room))

    async def live_or_start(self, room: str, guests: bool, started_by: str | None = None,
                            organizer: str | None = None) -> tuple[Meeting, bool]:
        """The room's live meeting, or a new one (True), recording who started it (`started_by`, a signed-in
        person) and a scheduled meeting's `organizer`. Processes agree on one: the store holds at most one
        live meeting per room (a unique index), so a second process's insert fails and it reads the first's."""
        async def op(conn: AsyncConnection) -> tuple[Meeting, bool]:
            row = (await conn.execute(_live_of(room))).first()
            if row is not None:
                return _meeting(row), False
            meeting = Meeting(new_meeting_id(), room, time.time(), guests, started_by=started_by, organizer=organizer)
            await conn.execute(meetings.insert().values(meeting_id=meeting.meeting_id, room=room, org_id=org_of(room),
                                                        started_at=meeting.started_at, guests=guests, end_reason="",
                                                        started_by=started_by, organizer=organizer))
            return meeting, True

        found = await self.live(room)  # the common case (a meeting going on) reads, and waits for no writer
        if found is not None:
            return found, False
        for _ in range(3):
            try:
                meeting, started = await self.db.write(op)
            except IntegrityError:
                continue  # another process started it between our read and our insert: read theirs
            if started:
                log.info("room %s: meeting %s started", room, meeting.meeting_id[:6])
                await self.audit.record(AuditEvent("meeting.start", "meeting", meeting.meeting_id,
                                                   after={"room": room, "guests": guests}, org_id=org_of(room)))
            return meeting, started
        raise RuntimeError(f"room {room}: no live meeting after three tries")

    def ended_here(self, meeting_id: str) -> None:
        """This process refuses the meeting's tokens from now on (its store write may still be on its way)."""
        self._ended.add(meeting_id)

    async def end(self, meeting_id: str, reason: str) -> bool:
        """Idempotent; True when this call ended it."""
        self._ended.add(meeting_id)
        async def op(conn: AsyncConnection) -> str | None:
            result = await conn.execute(update(meetings).where(meetings.c.meeting_id == meeting_id,
                                                               meetings.c.ended_at.is_(None))
                                        .values(ended_at=time.time(), end_reason=reason)
                                        .returning(meetings.c.org_id))
            row = result.first()
            return None if row is None else str(row[0])
        org = await self.db.write(op)  # the meeting's organisation, when this call ended it
        self._ended.add(meeting_id)
        if org is not None:
            await self.audit.record(AuditEvent("meeting.end", "meeting", meeting_id, after={"reason": reason},
                                               org_id=org))
        return org is not None

    async def unended(self) -> list[Meeting]:
        return await self._many(select(meetings).where(meetings.c.ended_at.is_(None)))

    async def of_room(self, room: str, limit: int = 100) -> list[Meeting]:
        return await self._many(select(meetings).where(meetings.c.room == room)
                                .order_by(meetings.c.started_at.desc()).limit(limit))

    async def recent(self, limit: int = 100, org: str | None = None) -> list[Meeting]:
        """Every room's meetings (of organisation `org`; None: of all), newest first (the admin's list)."""
        stmt = select(meetings) if org is None else select(meetings).where(meetings.c.org_id == org)
        return await self._many(stmt.order_by(meetings.c.started_at.desc()).limit(limit))

    async def remove(self, meeting_id: str, identity: str) -> None:
        """Holds every token of `identity` issued until now out of this meeting (a new invite still works)."""
        async def op(conn: AsyncConnection) -> None:
            now = time.time()
            done = await conn.execute(update(meeting_removals).where(
                meeting_removals.c.meeting_id == meeting_id, meeting_removals.c.identity == identity)
                .values(removed_at=now))
            if not done.rowcount:
                await conn.execute(meeting_removals.insert().values(meeting_id=meeting_id, identity=identity,
                                                                    removed_at=now))
        await self.db.write(op)

    async def check(self, token: AccessToken) -> Meeting:
        """The live meeting a meeting token reaches; `MeetingEnded` or `RemovedFromMeeting` otherwise."""
        meeting_id = token.meeting or ""
        if meeting_id in self._ended:
            raise MeetingEnded("this meeting has ended")
        # One statement for the meeting and this identity's removal: it runs at every join.
        stmt = (select(meetings, meeting_removals.c.removed_at)
                .select_from(meetings.outerjoin(meeting_removals, and_(
                    meeting_removals.c.meeting_id == meetings.c.meeting_id,
                    meeting_removals.c.identity == token.identity)))
                .where(meetings.c.meeting_id == meeting_id))
        row = await self.db.first(stmt)
        if row is None or row.room != token.room:
            raise MeetingEnded("this meeting does not exist (or has ended)")
        meeting = _meeting(row)
        if not meeting.live:
            self._ended.add(meeting_id)
            raise MeetingEnded("this meeting has ended")
        if row.removed_at is not None and token.issued_at <= float(row.removed_at):
            raise RemovedFromMeeting("a moderator removed you from this meeting")
        return meeting


async def invite_async(data_dir: Path, room: str, identity: str, name: str = "", grants: Grants | None = None,
                       ttl_seconds: int = 6 * 3600, database_url: str | None = None,
                       secret_file: Path | None = None) -> str:
    """A token for the room's live meeting (started, invite-only, when there is none), made without a running
    server: the ledger is in the store and the secret in the data dir (`convene token`, the benchmarks)."""
    db = Database.for_config(database_url, data_dir)
    await db.open()
    try:
        meeting, _ = await MeetingLedger(db).live_or_start(room, guests=False)
    finally:
        await db.close()
    issuer = TokenIssuer(server_secret(data_dir, secret_file))
    return issuer.mint(room, identity, name=name or identity, grants=grants, ttl_seconds=ttl_seconds,
                       meeting=meeting.meeting_id)


def invite(data_dir: Path, room: str, identity: str, name: str = "", grants: Grants | None = None,
           ttl_seconds: int = 6 * 3600, database_url: str | None = None, secret_file: Path | None = None) -> str:
    """`invite_async` for synchronous callers, also from inside a running event loop (the benchmarks call it
    between awaits): it runs on a thread of its own with its own loop, and blocks the caller as the old
    SQLite file did."""
    result: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(invite_async(data_dir, room, identity, name, grants, ttl_seconds,
                                                   database_url, secret_file)))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="convene-invite")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
