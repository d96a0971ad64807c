"""The audit_log table: appends that keep one chain across processes, pages for readers, the whole for verify.

An append bumps the `audit_seq` counter row first, inside its transaction: on PostgreSQL that row's lock
orders the appenders of every process until commit (the pattern of chat_seq), on SQLite the write lock does;
then it reads the last row's hash and inserts. So two processes never both chain from the same row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.chain import GENESIS, StoredRow, chain_hash
from audit.event import AuditEvent, Origin, canonical_json, event_document, parse_iso_time
from store.database import Database
from store.schema import audit_log, counters

SEQ = "audit_seq"
PAGE = 2000


@dataclass(frozen=True)
class Query:
    since: float | None = None
    until: float | None = None
    event: str | None = None
    actor: str | None = None


def _stored(row: Any) -> StoredRow:
    return StoredRow(seq=int(row.seq), at=float(row.at), event_type=row.event_type, actor=row.actor,
                     event=row.event, prev_hash=row.prev_hash, hash=row.hash)


async def _take_seq(conn: AsyncConnection) -> int:
    """The next seq; the counter row stays locked until this transaction ends."""
    row = (await conn.execute(update(counters).where(counters.c.name == SEQ)
                              .values(value=counters.c.value + 1).returning(counters.c.value))).first()
    if row is None:  # a database whose migration did not seed it (it does): the first append seeds it
        await conn.execute(counters.insert().values(name=SEQ, value=1))
        return 1
    return int(row[0])


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, event: AuditEvent, origin: Origin, actor: str) -> int:
        """Stores the event as the chain's next row; returns its seq."""
        document = event_document(0, event, origin, actor)
        at = parse_iso_time(document["time"])  # the column says what the event says (ms)
        canonical_json(document)  # refuses (TypeError/ValueError) what JSON cannot hold, before taking a seq

        async def op(conn: AsyncConnection) -> int:
            seq = await _take_seq(conn)
            prev = (await conn.execute(select(audit_log.c.hash).where(audit_log.c.seq < seq)
                                       .order_by(audit_log.c.seq.desc()).limit(1))).scalar()
            prev_hash = prev or GENESIS
            text = canonical_json({**document, "seq": seq})
            await conn.execute(audit_log.insert().values(
                seq=seq, org_id=event.org_id, at=at, event_type=event.event, actor=actor,
                event=text, prev_hash=prev_hash, hash=chain_hash(prev_hash, text)))
            return seq

        return await self.db.write(op)

    async def counter(self) -> int:
        async with self.db.read() as conn:
            value = (await conn.execute(select(counters.c.value).where(counters.c.name == SEQ))).scalar()
        return int(value or 0)

    async def page(self, query: Query, after_seq: int, limit: int = PAGE) -> list[StoredRow]:
        """Up to `limit` rows past `after_seq` that match, in seq order."""
        stmt = select(audit_log).where(audit_log.c.seq > after_seq)
        if query.since is not None:
            stmt = stmt.where(audit_log.c.at >= query.since)
        if query.until is not None:
            stmt = stmt.where(audit_log.c.at < query.until)
        if query.event is not None:
            stmt = stmt.where(audit_log.c.event_type == query.event)
        if query.actor is not None:
            stmt = stmt.where(audit_log.c.actor == query.actor)
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt.order_by(audit_log.c.seq).limit(limit))).all()
        return [_stored(r) for r in rows]

    async def rows(self, query: Query = Query(), page: int = PAGE) -> AsyncIterator[list[StoredRow]]:
        """Every matching row, page by page (keyset on seq: a page costs the same at any depth)."""
        after = 0
        while True:
            rows = await self.page(query, after, page)
            if not rows:
                return
            yield rows
            after = rows[-1].seq
