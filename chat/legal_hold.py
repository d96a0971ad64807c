"""Legal holds (#11, docs/retention.md): a named hold on users and channels keeps their messages and files through
retention and recall until it is lifted.

What a hold keeps:
- every message a held user authored, and every message in a held channel: retention skips them;
- what a recall took from such a message: the recall still hides it from everyone (the tombstone is what users
  and sync clients see), but the original (Message.to_wire() as JSON) is copied to `held_copies` and its files
  to `held_files`, so the files stay on disk (readable to admins, as every withdrawn file is) and the legal
  export (GET /v1/admin/legal_holds/{id}/messages) still reads both.

Lifting a hold keeps its row (who lifted it, when); the next retention run deletes what no other hold keeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chat.model import Message, new_id
from store.database import Database
from store.schema import chat_messages, held_copies, held_files, legal_holds
from store.upsert import dialect_insert

EXPORT_PAGE = 1000  # messages per read of the legal export


@dataclass(frozen=True)
class LegalHold:
    id: str
    name: str
    users: tuple[str, ...]
    channels: tuple[str, ...]  # channel ids
    created_by: str
    created_at: float
    lifted_at: float | None = None
    lifted_by: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "users": list(self.users), "channels": list(self.channels),
                "created_by": self.created_by, "created_at": self.created_at, "active": self.active,
                "lifted_at": self.lifted_at, "lifted_by": self.lifted_by}


@dataclass(frozen=True)
class Held:
    """What the active holds keep, together."""

    users: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    def covers(self, author: str, channel_id: str) -> bool:
        return author in self.users or channel_id in self.channels


def _hold(row: Any) -> LegalHold:
    return LegalHold(id=row.id, name=row.name, users=tuple(json.loads(row.users)),
                     channels=tuple(json.loads(row.channels)), created_by=row.created_by,
                     created_at=float(row.created_at), lifted_at=None if row.lifted_at is None else float(row.lifted_at),
                     lifted_by=row.lifted_by)


class HoldStore:
    def __init__(self, db: Database, org_id: str = "default") -> None:
        self.db = db
        self.org_id = org_id

    def in_org(self, org_id: str) -> HoldStore:
        """The holds of organisation `org_id` (each organisation's admins see and lift only their own)."""
        return HoldStore(self.db, org_id)

    async def create(self, name: str, users: Sequence[str], channels: Sequence[str], by: str) -> LegalHold:
        hold = LegalHold(id=new_id("lh_"), name=name, users=tuple(users), channels=tuple(channels), created_by=by,
                         created_at=time.time())
        values = {"id": hold.id, "org_id": self.org_id, "name": name, "users": json.dumps(list(users)),
                  "channels": json.dumps(list(channels)), "created_by": by, "created_at": hold.created_at}
        await self.db.write(lambda c: c.execute(legal_holds.insert().values(**values)))
        return hold

    async def list(self) -> list[LegalHold]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(legal_holds).where(legal_holds.c.org_id == self.org_id)
                                      .order_by(legal_holds.c.created_at))
            return [_hold(r) for r in rows]

    async def get(self, hold_id: str) -> LegalHold | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id,
                                                                legal_holds.c.org_id == self.org_id))).first()
        return _hold(row) if row else None

    async def lift(self, hold_id: str, by: str) -> bool:
        """Lifts an active hold; False when there is none by that id (or it was lifted before)."""
        async def op(conn: AsyncConnection) -> bool:
            done = await conn.execute(update(legal_holds).where(
                legal_holds.c.id == hold_id, legal_holds.c.org_id == self.org_id, legal_holds.c.lifted_at.is_(None))
                .values(lifted_at=time.time(), lifted_by=by).returning(legal_holds.c.id))
            return done.first() is not None

        return await self.db.write(op)

    async def held(self) -> Held:
        users: set[str] = set()
        channels: set[str] = set()
        for hold in await self.list():
            if hold.active:
                users.update(hold.users)
                channels.update(hold.channels)
        return Held(frozenset(users), frozenset(channels))

    async def keep_copy(self, original: Message, by: str) -> None:
        """What a recall takes from a held message, kept for the hold (a second recall keeps the first copy)."""
        copy = {"message_id": original.id, "org_id": self.org_id, "channel_id": original.channel_id,
                "author": original.author, "created_at": original.created_at, "recalled_at": time.time(),
                "recalled_by": by, "body": json.dumps(original.to_wire(), ensure_ascii=False)}
        files = [{"message_id": original.id, "file_id": a.file_id, "org_id": self.org_id}
                 for a in original.attachments if a.file_id]

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(dialect_insert(self.db, held_copies).values(**copy).on_conflict_do_nothing())
            if files:
                await conn.execute(dialect_insert(self.db, held_files).on_conflict_do_nothing(), files)

        await self.db.write(op)

    async def export(self, hold: LegalHold) -> AsyncIterator[dict[str, Any]]:
        """Everything the hold keeps, oldest first per source: live messages (and tombstones) of its users and
        channels, then the recalled originals it kept (each with "recalled": {"at", "by"})."""
        m = chat_messages
        wanted = or_(m.c.author.in_(list(hold.users)), m.c.channel_id.in_(list(hold.channels)))
        after = -1
        while True:
            async with self.db.read() as conn:
                rows = list(await conn.execute(select(m.c.ord, m.c.body).where(wanted, m.c.ord > after)
                                               .order_by(m.c.ord).limit(EXPORT_PAGE)))
            for row in rows:
                yield {"source": "messages", "message": json.loads(row.body)}
            if len(rows) < EXPORT_PAGE:
                break
            after = int(rows[-1].ord)
        h = held_copies
        kept = or_(h.c.author.in_(list(hold.users)), h.c.channel_id.in_(list(hold.channels)))
        async with self.db.read() as conn:
            copies = list(await conn.execute(select(h).where(kept, h.c.org_id == self.org_id)
                                             .order_by(h.c.created_at)))
        for c in copies:
            yield {"source": "held_copies", "message": json.loads(c.body),
                   "recalled": {"at": float(c.recalled_at), "by": c.recalled_by}}
