"""Scheduled posts in the SQL store (tables scheduled_posts, scheduled_post_runs): add, list, cancel, claim, record.

Claiming is how several server processes share one store without sending twice: a process that finds a row
due moves its next_run on with `UPDATE … WHERE id = ? AND next_run = <the due time it read> AND status =
'scheduled'`. On SQLite the writes of all processes are serialised by the file lock, on PostgreSQL the second
UPDATE waits for the first's row lock and then finds next_run changed: either way exactly one UPDATE matches
(rowcount 1) and only that process sends. A claimed occurrence is sent at most once: a process that dies
between claim and send loses that one occurrence rather than risking a duplicate.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from store.database import Database
from store.schema import scheduled_post_runs as runs_t
from store.schema import scheduled_posts as posts_t

SCHEDULED, DONE, CANCELLED = "scheduled", "done", "cancelled"
SENT, FAILED = "sent", "failed"


@dataclass(frozen=True)
class ScheduledPost:
    id: str
    author: str
    channel_id: str
    text: str
    rule_kind: str | None
    rule: str | None
    timezone: str | None
    start: float
    status: str
    next_run: float | None
    created_at: float
    runs: int = 0
    last_run_at: float | None = None
    last_outcome: str | None = None
    last_error_code: str | None = None
    last_message_id: str | None = None
    org_id: str = "default"  # the author's organisation: only its people see the post

    def to_wire(self) -> dict[str, Any]:
        recurrence = None if self.rule_kind is None else {
            "kind": self.rule_kind, "rule": self.rule, "timezone": self.timezone}
        last = None if self.last_outcome is None else {
            "at": self.last_run_at, "outcome": self.last_outcome, "error_code": self.last_error_code,
            "message_id": self.last_message_id}
        return {"id": self.id, "author": self.author, "channel": self.channel_id, "text": self.text,
                "at": self.start if self.rule_kind is None else None, "recurrence": recurrence,
                "status": self.status, "next_run": self.next_run, "created_at": self.created_at,
                "runs": self.runs, "last_run": last}


@dataclass(frozen=True)
class Run:
    due_at: float
    ran_at: float
    outcome: str
    error_code: str | None
    message_id: str | None

    def to_wire(self) -> dict[str, Any]:
        return {"due_at": self.due_at, "ran_at": self.ran_at, "outcome": self.outcome,
                "error_code": self.error_code, "message_id": self.message_id}


def new_post_id() -> str:
    return "sp_" + secrets.token_hex(10)


def _post(row: Any) -> ScheduledPost:
    return ScheduledPost(**{c.name: getattr(row, c.name) for c in posts_t.columns})


class ScheduledStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, post: ScheduledPost) -> ScheduledPost:
        values = {c.name: getattr(post, c.name) for c in posts_t.columns}

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(posts_t.insert().values(**values))
        await self.db.write(op)
        return post

    async def get(self, post_id: str) -> ScheduledPost | None:
        row = await self.db.first(select(posts_t).where(posts_t.c.id == post_id))
        return None if row is None else _post(row)

    async def listed(self, author: str | None, org: str, limit: int = 500) -> list[ScheduledPost]:
        """Organisation `org`'s, newest first; `author` None lists everyone's there (admins)."""
        query = select(posts_t).where(posts_t.c.org_id == org).order_by(posts_t.c.created_at.desc()).limit(limit)
        if author is not None:
            query = query.where(posts_t.c.author == author)
        async with self.db.read() as conn:
            return [_post(r) for r in (await conn.execute(query)).all()]

    async def count_active(self, author: str) -> int:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(posts_t.c.id).where(
                and_(posts_t.c.author == author, posts_t.c.status == SCHEDULED)))).all()
        return len(rows)

    async def runs(self, post_id: str, limit: int = 50) -> list[Run]:
        query = (select(runs_t).where(runs_t.c.post_id == post_id).order_by(runs_t.c.due_at.desc()).limit(limit))
        async with self.db.read() as conn:
            return [Run(due_at=r.due_at, ran_at=r.ran_at, outcome=r.outcome, error_code=r.error_code,
                        message_id=r.message_id) for r in (await conn.execute(query)).all()]

    async def cancel(self, post_id: str) -> bool:
        """True when it was scheduled and is cancelled now (a concurrent run's claim may still send once)."""
        async def op(conn: AsyncConnection) -> int:
            done = await conn.execute(update(posts_t).where(
                and_(posts_t.c.id == post_id, posts_t.c.status == SCHEDULED)).values(status=CANCELLED, next_run=None))
            return int(done.rowcount)
        return await self.db.write(op) == 1

    async def due(self, now: float, limit: int = 100) -> list[ScheduledPost]:
        query = (select(posts_t).where(and_(posts_t.c.status == SCHEDULED, posts_t.c.next_run <= now))
                 .order_by(posts_t.c.next_run).limit(limit))
        async with self.db.read() as conn:
            return [_post(r) for r in (await conn.execute(query)).all()]

    async def earliest(self) -> float | None:
        query = (select(posts_t.c.next_run).where(posts_t.c.status == SCHEDULED)
                 .order_by(posts_t.c.next_run).limit(1))
        row = await self.db.first(query)
        return None if row is None else float(row.next_run)

    async def claim(self, post: ScheduledPost, next_run: float | None) -> bool:
        """Moves a due post on to `next_run` (None: it is done) if no other process did first; True if we won."""
        assert post.next_run is not None
        values: dict[str, Any] = {"next_run": next_run, "runs": posts_t.c.runs + 1}
        if next_run is None:
            values["status"] = DONE

        async def op(conn: AsyncConnection) -> int:
            done = await conn.execute(update(posts_t).where(and_(
                posts_t.c.id == post.id, posts_t.c.next_run == post.next_run, posts_t.c.status == SCHEDULED))
                .values(**values))
            return int(done.rowcount)
        return await self.db.write(op) == 1

    async def record(self, post_id: str, run: Run) -> bool:
        """Stores a run's outcome; False if that occurrence had a run already (it is then left as it was)."""
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(runs_t.insert().values(
                post_id=post_id, due_at=run.due_at, ran_at=run.ran_at, outcome=run.outcome,
                error_code=run.error_code, message_id=run.message_id))
            await conn.execute(update(posts_t).where(posts_t.c.id == post_id).values(
                last_run_at=run.ran_at, last_outcome=run.outcome, last_error_code=run.error_code,
                last_message_id=run.message_id))
        try:
            await self.db.write(op)  # its savepoint is rolled back when the insert is refused
        except IntegrityError:
            return False
        return True
