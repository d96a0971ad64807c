"""Scheduled meetings: a room, a title, a start and a length, an organiser and the people invited.

A scheduled meeting is a plan, not a meeting: the ledger (identity/meetings.py) starts the meeting when the first
person joins its room. While the plan's window is open (from `EARLY_SECONDS` before its start to its end) a meeting
started in its room records the organiser, who then moderates it, also on rejoining. A plan never grants anything
by itself: only the ledger's record does, so a meeting that was already going on gains no moderator from a plan.

A room holds one plan at a time: creating or moving a plan whose window overlaps another plan's in the same room,
or onto a room where a meeting is going on that was not started under it, is refused, checked in the same write
transaction as the insert (and, on PostgreSQL, under a lock on the room's name, so two processes cannot both
pass the check). An organiser has at most `PER_ORGANIZER_MAX` plans that have not ended.

Ids are 128 random bits (`sm_…`); every row carries its organisation, and a read names the organisation it is
for, so another organisation's plan is not found.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import RoomAlreadyPlanned, RoomInUse, TooManyScheduledMeetings
from identity.orgs import org_of, plain
from store.database import Database
from store.schema import meetings as meetings_t
from store.schema import scheduled_meeting_invitees as invitees_t
from store.schema import scheduled_meetings as plans_t

log = logging.getLogger("convene.identity.schedule")

EARLY_SECONDS = 15 * 60  # a scheduled meeting's room counts as its own from this long before the start
PER_ORGANIZER_MAX = 200  # plans one organiser has that have not ended: each sent notices, and lists stay short


def new_schedule_id() -> str:
    return "sm_" + secrets.token_urlsafe(16)  # 128 bits: an id is not a secret, but nobody guesses one


def rfc3339(ts: float) -> str:
    """Unix seconds as RFC 3339 in UTC, to the second: `2026-12-02T09:00:00Z`."""
    return datetime.fromtimestamp(ts, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ScheduledMeeting:
    id: str
    room: str  # server-internal (`org~room` outside the default organisation)
    title: str
    organizer: str
    starts_at: float
    duration_minutes: int
    invitees: tuple[str, ...]
    timezone: str = ""  # the organiser's IANA zone, for how the time is written in notices; "" : UTC
    created_at: float = 0.0
    updated_at: float = 0.0
    sequence: int = 0  # how many times it changed (iCalendar SEQUENCE)

    @property
    def org(self) -> str:
        return org_of(self.room)

    @property
    def ends_at(self) -> float:
        return self.starts_at + self.duration_minutes * 60

    def reaches(self, login: str) -> bool:
        """Whether `login` organises it or is invited (and so may see it)."""
        return login == self.organizer or login in self.invitees

    def window_open(self, now: float) -> bool:
        return self.starts_at - EARLY_SECONDS <= now < self.ends_at

    def same_times(self, other: ScheduledMeeting) -> bool:
        return (self.room, self.starts_at, self.duration_minutes) == (other.room, other.starts_at,
                                                                     other.duration_minutes)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "room": plain(self.room), "title": self.title, "organizer": self.organizer,
                "starts_at": rfc3339(self.starts_at), "ends_at": rfc3339(self.ends_at),
                "duration_minutes": self.duration_minutes, "timezone": self.timezone or None,
                "invitees": list(self.invitees), "created_at": rfc3339(self.created_at),
                "updated_at": rfc3339(self.updated_at), "sequence": self.sequence}


def _plan(row: Any, invitees: Iterable[str]) -> ScheduledMeeting:
    return ScheduledMeeting(id=row.id, room=row.room, title=row.title, organizer=row.organizer,
                            starts_at=float(row.starts_at), duration_minutes=int(row.duration_minutes),
                            invitees=tuple(sorted(invitees)), timezone=row.timezone or "",
                            created_at=float(row.created_at), updated_at=float(row.updated_at),
                            sequence=int(row.sequence))


async def _with_invitees(conn: AsyncConnection, rows: list[Any]) -> list[ScheduledMeeting]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    found: dict[str, list[str]] = {i: [] for i in ids}
    for sid, login in (await conn.execute(select(invitees_t.c.scheduled_id, invitees_t.c.login)
                                          .where(invitees_t.c.scheduled_id.in_(ids)))).all():
        found[sid].append(login)
    return [_plan(r, found[r.id]) for r in rows]


def _invitee_rows(plan: ScheduledMeeting) -> list[dict[str, str]]:
    return [{"scheduled_id": plan.id, "login": login, "org_id": plan.org} for login in plan.invitees]


def _lock_key(kind: str, name: str) -> int:
    """A signed 64-bit pg_advisory_xact_lock key for a room or an organiser, the same in every process."""
    return int.from_bytes(hashlib.sha256(f"convene:schedule:{kind}:{name}".encode()).digest()[:8], "big",
                          signed=True)


async def _lock(conn: AsyncConnection, *keys: int) -> None:
    """PostgreSQL: holds the keys until this write group commits, so another process's check of the same room or
    organiser waits for our insert. SQLite's write transaction (BEGIN IMMEDIATE) already holds every writer off.
    Taken in one order, so two groups never wait on each other's."""
    if conn.dialect.name == "postgresql":
        for key in sorted(keys):
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


async def _check_room(conn: AsyncConnection, plan: ScheduledMeeting, before: ScheduledMeeting | None) -> None:
    """The room is free for `plan`: no other plan's window overlaps its window, and no meeting is going on there
    but one started under `before` (the plan as stored, when it is being moved)."""
    overlapping = await conn.execute(select(plans_t.c.id).where(
        plans_t.c.room == plan.room, plans_t.c.id != plan.id,
        plans_t.c.starts_at - EARLY_SECONDS < plan.ends_at,
        plans_t.c.starts_at + plans_t.c.duration_minutes * 60 > plan.starts_at - EARLY_SECONDS).limit(1))
    if overlapping.first() is not None:
        raise RoomAlreadyPlanned("another meeting is scheduled in this room at an overlapping time",
                                 room=plain(plan.room))
    live = (await conn.execute(select(meetings_t.c.started_at, meetings_t.c.organizer).where(
        meetings_t.c.room == plan.room, meetings_t.c.ended_at.is_(None)).limit(1))).first()
    if live is not None and not (before is not None and live.organizer == before.organizer
                                 and before.window_open(float(live.started_at))):
        raise RoomInUse("a meeting is going on in this room that was not started under this scheduled meeting",
                        room=plain(plan.room))


async def _check_count(conn: AsyncConnection, plan: ScheduledMeeting, now: float, limit: int) -> None:
    count = (await conn.execute(select(func.count()).select_from(plans_t).where(
        plans_t.c.org_id == plan.org, plans_t.c.organizer == plan.organizer,
        plans_t.c.starts_at + plans_t.c.duration_minutes * 60 > now))).scalar_one()
    if count >= limit:
        raise TooManyScheduledMeetings(f"at most {limit} scheduled meetings that have not ended, per organiser",
                                       limit=limit)


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, plan: ScheduledMeeting, limit: int = PER_ORGANIZER_MAX) -> ScheduledMeeting:
        """Stores a new plan; RoomAlreadyPlanned, RoomInUse or TooManyScheduledMeetings (nothing stored)."""
        now = time.time()
        plan = replace(plan, created_at=now, updated_at=now, sequence=0)

        async def op(conn: AsyncConnection) -> None:
            await _lock(conn, _lock_key("room", plan.room), _lock_key("organizer", f"{plan.org}/{plan.organizer}"))
            await _check_room(conn, plan, None)
            await _check_count(conn, plan, now, limit)
            await conn.execute(plans_t.insert().values(
                id=plan.id, org_id=plan.org, room=plan.room, title=plan.title, organizer=plan.organizer,
                starts_at=plan.starts_at, duration_minutes=plan.duration_minutes, timezone=plan.timezone,
                created_at=now, updated_at=now, sequence=0))
            if plan.invitees:
                await conn.execute(invitees_t.insert(), _invitee_rows(plan))
        await self.db.write(op)
        return plan

    async def get(self, schedule_id: str, org: str) -> ScheduledMeeting | None:
        """The plan `schedule_id` of organisation `org` (another organisation's is None)."""
        async with self.db.read() as conn:
            rows = (await conn.execute(select(plans_t).where(plans_t.c.id == schedule_id,
                                                             plans_t.c.org_id == org))).all()
            found = await _with_invitees(conn, list(rows))
        return found[0] if found else None

    async def of_person(self, org: str, login: str, start: float, end: float,
                        limit: int = 500) -> list[ScheduledMeeting]:
        """The plans `login` organises or is invited to that overlap [start, end), by start time."""
        invited = select(invitees_t.c.scheduled_id).where(invitees_t.c.login == login, invitees_t.c.org_id == org)
        stmt = (select(plans_t).where(plans_t.c.org_id == org, plans_t.c.starts_at < end,
                                      plans_t.c.starts_at + plans_t.c.duration_minutes * 60 > start,
                                      or_(plans_t.c.organizer == login, plans_t.c.id.in_(invited)))
                .order_by(plans_t.c.starts_at, plans_t.c.id).limit(limit))
        async with self.db.read() as conn:
            return await _with_invitees(conn, list((await conn.execute(stmt)).all()))

    async def open_in_room(self, room: str, now: float) -> ScheduledMeeting | None:
        """The plan whose window is open in `room` (server-internal name) at `now`. Plans made since rooms hold one
        at a time never overlap; of overlapping ones stored before that, the first made keeps the room."""
        stmt = (select(plans_t).where(plans_t.c.room == room, plans_t.c.starts_at - EARLY_SECONDS <= now,
                                      plans_t.c.starts_at + plans_t.c.duration_minutes * 60 > now)
                .order_by(plans_t.c.created_at, plans_t.c.id).limit(1))
        async with self.db.read() as conn:
            found = await _with_invitees(conn, list((await conn.execute(stmt)).all()))
        return found[0] if found else None

    async def save(self, plan: ScheduledMeeting, before: ScheduledMeeting) -> ScheduledMeeting:
        """Writes a changed plan (its invitees replaced), one more in its sequence. When its time moved, the room
        is checked again as on create (RoomAlreadyPlanned, RoomInUse; nothing stored)."""
        plan = replace(plan, updated_at=time.time(), sequence=plan.sequence + 1)

        async def op(conn: AsyncConnection) -> None:
            if not plan.same_times(before):
                await _lock(conn, _lock_key("room", plan.room))
                await _check_room(conn, plan, before)
            await conn.execute(update(plans_t).where(plans_t.c.id == plan.id).values(
                title=plan.title, starts_at=plan.starts_at, duration_minutes=plan.duration_minutes,
                timezone=plan.timezone, updated_at=plan.updated_at, sequence=plan.sequence))
            await conn.execute(delete(invitees_t).where(invitees_t.c.scheduled_id == plan.id))
            if plan.invitees:
                await conn.execute(invitees_t.insert(), _invitee_rows(plan))
        await self.db.write(op)
        return plan

    async def delete(self, plan: ScheduledMeeting) -> None:
        async def op(conn: AsyncConnection) -> None:
            # Invitees first: SQLite enforces the cascade only where foreign keys are switched on.
            await conn.execute(delete(invitees_t).where(invitees_t.c.scheduled_id == plan.id))
            await conn.execute(delete(plans_t).where(plans_t.c.id == plan.id))
        await self.db.write(op)
