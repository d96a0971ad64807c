"""The audit_log table: appends that keep one chain across processes, pages for readers, the whole for verify.

An append bumps the `audit_seq` counter row first (by as many events as it appends), inside its transaction: on PostgreSQL that row's lock
orders the appenders of every process until commit (the pattern of chat_seq), on SQLite the write lock does;
then it reads the last row's hash and inserts. So two processes never both chain from the same row.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.chain import GENESIS, StoredRow, chain_hash
from audit.event import AuditEvent, Origin, canonical_json, event_document, parse_iso_time
from store.database import Database
from store.schema import audit_log, chat_users, counters

SEQ = "audit_seq"
PAGE = 2000
_BATCH = 500  # appends per write at most


@dataclass(frozen=True)
class Query:
    since: float | None = None
    until: float | None = None
    event: str | None = None
    actor: str | None = None
    org: str | None = None  # one organisation's events (None: every organisation's, for verify)


def _stored(row: Any) -> StoredRow:
    return StoredRow(seq=int(row.seq), at=float(row.at), event_type=row.event_type, actor=row.actor,
                     event=row.event, prev_hash=row.prev_hash, hash=row.hash, org_id=row.org_id)


async def _take_seqs(conn: AsyncConnection, n: int) -> int:
    """Adds n to the counter and returns the first of the n seqs; the row stays locked until this transaction
    ends."""
    row = (await conn.execute(update(counters).where(counters.c.name == SEQ)
                              .values(value=counters.c.value + n).returning(counters.c.value))).first()
    if row is None:  # a database whose migration did not seed it (it does): the first append seeds it
        await conn.execute(counters.insert().values(name=SEQ, value=n))
        return 1
    return int(row[0]) - n + 1


@dataclass
class _Pending:
    document: dict[str, Any]
    at: float
    event: AuditEvent
    actor: str
    done: asyncio.Future[int]


class AuditLog:
    """Appends queue up while a write is under way and go together in the next one (one counter bump, one read
    of the last hash, one insert for all of them): a statement costs a hop to the driver's thread, so a burst
    of events costs about what one does."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, event: AuditEvent, origin: Origin, actor: str) -> int:
        """Stores the event as the chain's next row; returns its seq."""
        document = event_document(0, event, origin, actor)
        at = parse_iso_time(document["time"])  # the column says what the event says (ms)
        canonical_json(document)  # refuses (TypeError/ValueError) what JSON cannot hold, before taking a seq
        pending = _Pending(document, at, event, actor, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="audit-append")
        return await pending.done

    async def close(self, timeout: float = 5.0) -> None:
        """Waits (up to `timeout` s) for the appends queued to be written, then stops the writer task: nothing of
        it outlives the app (its waiters get CancelledError if the store never answered)."""
        flusher = self._flusher
        if flusher is None:
            return
        await asyncio.wait([flusher], timeout=timeout)
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        for pending in self._pending:
            if not pending.done.done():
                pending.done.cancel()
        self._pending = []
        self._flusher = None

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
            try:
                first = await self.db.write(lambda conn: self._insert(conn, batch))
            except asyncio.CancelledError:  # close(): the batch's waiters learn it was not written
                for p in batch:
                    p.done.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - every waiter gets it
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)
                continue
            for n, p in enumerate(batch):
                if not p.done.done():
                    p.done.set_result(first + n)

    @staticmethod
    async def _insert(conn: AsyncConnection, batch: list[_Pending]) -> int:
        first = await _take_seqs(conn, len(batch))
        prev = (await conn.execute(select(audit_log.c.hash).where(audit_log.c.seq < first)
                                   .order_by(audit_log.c.seq.desc()).limit(1))).scalar()
        prev_hash, rows = prev or GENESIS, []
        for n, p in enumerate(batch):
            text = canonical_json({**p.document, "seq": first + n})
            digest = chain_hash(prev_hash, text)
            rows.append({"seq": first + n, "org_id": p.document["org_id"], "at": p.at, "event_type": p.event.event,
                         "actor": p.actor, "event": text, "prev_hash": prev_hash, "hash": digest})
            prev_hash = digest
        await conn.execute(audit_log.insert(), rows)
        return first

    async def org_of(self, *logins: str) -> str | None:
        """The organisation of the first of `logins` that is a user (None: none is)."""
        async with self.db.read() as conn:
            for login in logins:
                org = (await conn.execute(select(chat_users.c.org_id).where(chat_users.c.login == login))).scalar()
                if org is not None:
                    return str(org)
        return None

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
        if query.org is not None:
            stmt = stmt.where(audit_log.c.org_id == query.org)
        rows = await self.db.all(stmt.order_by(audit_log.c.seq).limit(limit))
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
