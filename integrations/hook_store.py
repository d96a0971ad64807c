"""Webhooks in the SQL store: the hooks (`hooks`) and what they received or sent (`hook_deliveries`).

A delivery row is taken by inserting it: the primary key (hook, delivery id) lets exactly one request or one
server process have it, so a Git redelivery posts nothing and an outgoing message is sent by one process only.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from store.database import Database
from store.schema import hook_deliveries, hooks

log = logging.getLogger(__name__)

KINDS = ("incoming", "github", "gitlab", "outgoing")


@dataclass(frozen=True)
class Hook:
    id: str
    kind: str
    name: str
    channel_id: str | None
    owner: str
    bot_login: str
    created_at: float
    secret_hash: str | None = None  # incoming: SHA-256 of the URL's secret
    salt: str | None = None  # github, gitlab, outgoing: the shared secret is derived from it (integrations.secrets)
    url: str | None = None  # outgoing: where messages go
    trigger_words: tuple[str, ...] = ()
    org_id: str = "default"

    def to_wire(self) -> dict[str, Any]:
        """What the API shows: never a secret nor its hash."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "name": self.name, "channel": self.channel_id,
                               "owner": self.owner, "bot": self.bot_login, "created_at": self.created_at}
        if self.kind == "outgoing":
            out.update(url=self.url, trigger_words=list(self.trigger_words))
        return out


@dataclass(frozen=True)
class Delivery:
    hook_id: str
    delivery_id: str
    status: str  # received (Git), sending, ok, failed (outgoing)
    attempts: int
    error: str
    created_at: float
    updated_at: float = field(default=0.0)

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.delivery_id, "status": self.status, "attempts": self.attempts, "error": self.error,
                "created_at": self.created_at, "updated_at": self.updated_at}


def _hook(row: Any) -> Hook:
    words = json.loads(row.trigger_words or "[]")
    return Hook(id=row.id, kind=row.kind, name=row.name, channel_id=row.channel_id, owner=row.owner,
                bot_login=row.bot_login, created_at=float(row.created_at), secret_hash=row.secret_hash,
                salt=row.salt, url=row.url, trigger_words=tuple(str(w) for w in words), org_id=row.org_id)


def _delivery(row: Any) -> Delivery:
    return Delivery(hook_id=row.hook_id, delivery_id=row.delivery_id, status=row.status, attempts=int(row.attempts),
                    error=row.error, created_at=float(row.created_at), updated_at=float(row.updated_at))


class HookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, hook: Hook) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(hooks.insert().values(
                id=hook.id, org_id=hook.org_id, kind=hook.kind, name=hook.name, channel_id=hook.channel_id,
                owner=hook.owner, bot_login=hook.bot_login, secret_hash=hook.secret_hash, salt=hook.salt,
                url=hook.url, trigger_words=json.dumps(list(hook.trigger_words)), created_at=hook.created_at))
        await self.db.write(op)

    async def get(self, hook_id: str) -> Hook | None:
        row = await self.db.first(select(hooks).where(hooks.c.id == hook_id))
        return None if row is None else _hook(row)

    async def list_hooks(self, kind: str | None = None) -> list[Hook]:
        query = select(hooks).order_by(hooks.c.created_at)
        if kind is not None:
            query = query.where(hooks.c.kind == kind)
        rows = await self.db.all(query)
        return [_hook(r) for r in rows]

    async def delete(self, hook_id: str) -> bool:
        async def op(conn: AsyncConnection) -> bool:
            await conn.execute(delete(hook_deliveries).where(hook_deliveries.c.hook_id == hook_id))
            return bool((await conn.execute(delete(hooks).where(hooks.c.id == hook_id))).rowcount)
        return await self.db.write(op)

    async def claim(self, hook_id: str, delivery_id: str, status: str) -> bool:
        """Takes (hook, delivery id): True for the first caller in any process, False ever after."""
        now = time.time()

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(hook_deliveries.insert().values(
                hook_id=hook_id, delivery_id=delivery_id, status=status, attempts=0, error="", created_at=now,
                updated_at=now))
        try:
            await self.db.write(op)
        except IntegrityError:
            return False
        return True

    async def release(self, hook_id: str, delivery_id: str) -> None:
        """Gives a claim back (the post it was for failed): a redelivery may try again."""
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(hook_deliveries).where(hook_deliveries.c.hook_id == hook_id,
                                                             hook_deliveries.c.delivery_id == delivery_id))
        await self.db.write(op)

    async def save(self, deliveries: list[Delivery]) -> None:
        """Writes many deliveries' outcomes in one write: each row updated, or inserted when nobody claimed it
        (a single process does not claim: no other process sees its messages)."""
        async def op(conn: AsyncConnection) -> None:
            live = set((await conn.execute(select(hooks.c.id).where(
                hooks.c.id.in_({d.hook_id for d in deliveries})))).scalars())  # a hook deleted meanwhile: dropped
            rows = [d for d in deliveries if d.hook_id in live]
            claimed = {(r.hook_id, r.delivery_id) for r in (await conn.execute(
                select(hook_deliveries.c.hook_id, hook_deliveries.c.delivery_id).where(
                    hook_deliveries.c.hook_id.in_(live),
                    hook_deliveries.c.delivery_id.in_({d.delivery_id for d in rows})))).all()}
            for d in rows:
                if (d.hook_id, d.delivery_id) in claimed:
                    await conn.execute(update(hook_deliveries).where(
                        hook_deliveries.c.hook_id == d.hook_id, hook_deliveries.c.delivery_id == d.delivery_id).values(
                        status=d.status, attempts=d.attempts, error=d.error[:2000], updated_at=d.updated_at))
            new = [{"hook_id": d.hook_id, "delivery_id": d.delivery_id, "status": d.status, "attempts": d.attempts,
                    "error": d.error[:2000], "created_at": d.created_at, "updated_at": d.updated_at}
                   for d in rows if (d.hook_id, d.delivery_id) not in claimed]
            if new:
                await conn.execute(hook_deliveries.insert(), new)  # one statement for the lot
        if deliveries:
            await self.db.write(op)

    async def recent(self, hook_id: str, limit: int = 20) -> list[Delivery]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(hook_deliveries).where(hook_deliveries.c.hook_id == hook_id)
                                       .order_by(hook_deliveries.c.updated_at.desc()).limit(limit))).all()
        return [_delivery(r) for r in rows]

    async def prune(self, before: float) -> int:
        """Forgets deliveries older than `before` (a Git host redelivers within hours, not weeks)."""
        async def op(conn: AsyncConnection) -> int:
            result = await conn.execute(delete(hook_deliveries).where(hook_deliveries.c.created_at < before))
            return int(result.rowcount or 0)
        return await self.db.write(op)
