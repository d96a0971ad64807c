"""Retention (#11, docs/retention.md): messages older than their channel's policy (or the organisation's) are
deleted, in batches, with their search terms, file references and button records; then each of their files no
other message (and no legal hold) still carries, and each blob no file record points at any more.

"Deleted" here is not a recall: the rows are gone. Connected clients get one `expired` event per batch and
channel (`{"type": "expired", "channel", "ids", "before"}`) and drop those messages; a client that was offline
finds them missing from history and search, and `GET /v1/sync` never sends them again (there is no tombstone to
send). Recall tombstones older than the policy are deleted the same way.

What a legal hold keeps (chat/legal_hold.py) stays: messages by held users, everything in held channels, and the
recalled originals kept for a hold (deleted here once no active hold covers them and they are older than the
policy). Each organisation is run on its own, under its own policy and holds (a run for one organisation never
deletes another's messages; a hold of one never keeps another's), and records one `retention.run` audit event
with its counts in that organisation's log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from audit import AuditEvent
from chat.files import FileVault
from chat.legal_hold import Held, HoldStore
from chat.model import Channel
from chat.service import ChatService
from store.database import Database
from store.orgs import org_ids
from store.schema import (
    chat_file_refs,
    chat_files,
    chat_messages,
    chat_search_terms,
    held_copies,
    held_files,
    message_actions,
)

log = logging.getLogger(__name__)

BATCH = 1000  # messages per transaction: the shared writer keeps serving posts between batches


@dataclass
class RetentionReport:
    messages: int = 0  # messages (and recall tombstones) deleted
    files: int = 0  # file records deleted
    bytes: int = 0  # their sizes
    blobs: int = 0  # blobs removed from disk
    held_back: int = 0  # expired messages a legal hold kept
    copies: int = 0  # recalled originals a lifted hold no longer kept, deleted
    channels: int = 0  # channels with a policy that were looked at
    seconds: float = 0.0

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Batch:
    ids: list[str]
    file_ids: list[str]
    done: bool = False  # nothing left to look at


class RetentionStore:
    """The deletes, each batch one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def delete_expired(self, channel_id: str, before: float, spare: frozenset[str], limit: int) -> _Batch:
        m = chat_messages

        async def op(conn: AsyncConnection) -> _Batch:
            stmt = select(m.c.ord, m.c.id).where(m.c.channel_id == channel_id, m.c.created_at < before)
            if spare:
                stmt = stmt.where(m.c.author.not_in(sorted(spare)))
            rows = list(await conn.execute(stmt.order_by(m.c.ord).limit(limit)))
            if not rows:
                return _Batch([], [], done=True)
            ords = [int(r.ord) for r in rows]
            ids = [r.id for r in rows]
            r = chat_file_refs
            files = [f[0] for f in await conn.execute(select(r.c.file_id).distinct().where(r.c.message_id.in_(ids)))]
            await conn.execute(delete(chat_search_terms).where(chat_search_terms.c.ord.in_(ords)))
            await conn.execute(delete(r).where(r.c.message_id.in_(ids)))
            await conn.execute(delete(message_actions).where(message_actions.c.message_id.in_(ids)))
            # What this transaction deleted (another process's run may have taken some first).
            gone = [r[0] for r in await conn.execute(delete(m).where(m.c.ord.in_(ords)).returning(m.c.id))]
            return _Batch(gone, files) if gone else _Batch([], [])

        return await self.db.write(op)

    async def count_held(self, channel_id: str, before: float, held: Held) -> int:
        m = chat_messages
        stmt = select(func.count()).where(m.c.channel_id == channel_id, m.c.created_at < before)
        if channel_id not in held.channels:
            if not held.users:
                return 0
            stmt = stmt.where(m.c.author.in_(sorted(held.users)))
        async with self.db.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def delete_copies(self, channel_id: str, before: float, spare: frozenset[str], limit: int) -> _Batch:
        """Recalled originals in this channel no active hold keeps (the caller checked the channel is not held)."""
        h = held_copies

        async def op(conn: AsyncConnection) -> _Batch:
            stmt = select(h.c.message_id).where(h.c.channel_id == channel_id, h.c.created_at < before)
            if spare:
                stmt = stmt.where(h.c.author.not_in(sorted(spare)))
            ids = [r[0] for r in await conn.execute(stmt.limit(limit))]
            if not ids:
                return _Batch([], [])
            files = [r[0] for r in await conn.execute(select(held_files.c.file_id).where(
                held_files.c.message_id.in_(ids)))]
            await conn.execute(delete(held_files).where(held_files.c.message_id.in_(ids)))
            await conn.execute(delete(h).where(h.c.message_id.in_(ids)))
            return _Batch(ids, files)

        return await self.db.write(op)

    async def withdrawn_files(self, attached_before: float, org_id: str, limit: int) -> list[str]:
        """Organisation `org_id`'s files every carrying message of which was recalled (or deleted) that no hold
        keeps, posted before `attached_before`: a recall drops the tombstone's attachments, so retention finds
        them this way."""
        f = chat_files
        stmt = (select(f.c.id).where(f.c.org_id == org_id, f.c.attached_at.is_not(None),
                                     f.c.attached_at < attached_before,
                                     ~exists().where(chat_file_refs.c.file_id == f.c.id),
                                     ~exists().where(held_files.c.file_id == f.c.id))
                .order_by(f.c.attached_at).limit(limit))
        async with self.db.read() as conn:
            return [r[0] for r in await conn.execute(stmt)]

    async def delete_files(self, file_ids: list[str]) -> list[tuple[str, int]]:
        """Deletes those of the records no message and no hold still carries; returns (sha256, size) of each."""
        if not file_ids:
            return []
        f = chat_files

        async def op(conn: AsyncConnection) -> list[tuple[str, int]]:
            gone = await conn.execute(delete(f).where(
                f.c.id.in_(file_ids), f.c.attached_at.is_not(None),
                ~exists().where(chat_file_refs.c.file_id == f.c.id),
                ~exists().where(held_files.c.file_id == f.c.id)).returning(f.c.sha256, f.c.size))
            return [(r[0], int(r[1])) for r in gone]

        return await self.db.write(op)

    async def sha_in_use(self, sha256: str) -> bool:
        row = await self.db.first(select(chat_files.c.id).where(chat_files.c.sha256 == sha256).limit(1))
        return row is not None


class Retention:
    """One run over every channel with a policy (the daily job, `convene retention run`)."""

    def __init__(self, service: ChatService, db: Database, vault: FileVault, batch: int = BATCH) -> None:
        self.service = service
        self.store = RetentionStore(db)
        self.holds = HoldStore(db)
        self.vault = vault
        self.batch = batch
        self._lock = asyncio.Lock()  # one run at a time here: the daily job and POST /v1/admin/retention/run

    async def run(self, now: float | None = None, org: str | None = None) -> RetentionReport:
        """Organisation `org`'s channels and files under its policy (None: every organisation's, each under its
        own policy and its own holds, the daily job and the CLI). Answers the counts (summed over organisations)."""
        async with self._lock:
            total = RetentionReport()
            for org_id in [org] if org is not None else await org_ids(self.store.db):
                report = await self._run(now, org_id)
                for name, value in report.to_wire().items():
                    setattr(total, name, round(getattr(total, name) + value, 3))
            return total

    async def _run(self, now: float | None, org_id: str) -> RetentionReport:
        """One organisation: a hold of another never keeps (nor touches) its messages, its deletes never reach
        another's (channels, recalled originals and files are each the organisation's)."""
        started = time.time()
        now = started if now is None else now
        report = RetentionReport()
        org = await self.service.org(org_id)
        held = await self.holds.in_org(org_id).held()
        for channel in await self.service.store.list_channels(org=org_id):
            days = channel.retention_days if channel.retention_days is not None else org.retention_days
            if days > 0:
                report.channels += 1
                await self._channel(channel, now - days * 86400, held, report)
        if org.retention_days > 0:
            await self._withdrawn(now - org.retention_days * 86400, org_id, report)
        report.seconds = round(time.time() - started, 3)
        await self.service.audit.record(AuditEvent("retention.run", "org", org_id, after=report.to_wire(),
                                                   org_id=org_id))
        if report.messages or report.files or report.held_back:
            log.info("retention of %s: %s", org_id, report.to_wire())
        return report

    async def _channel(self, channel: Channel, cutoff: float, held: Held, report: RetentionReport) -> None:
        report.held_back += await self.store.count_held(channel.id, cutoff, held)
        if channel.id in held.channels:
            return
        while True:
            batch = await self.store.delete_expired(channel.id, cutoff, held.users, self.batch)
            if batch.done:
                break
            report.messages += len(batch.ids)
            await self._files(batch.file_ids, report)
            if batch.ids:
                await self.service.bus.publish({"type": "expired", "channel": channel.id, "ids": batch.ids,
                                                "before": cutoff})
        while True:
            copies = await self.store.delete_copies(channel.id, cutoff, held.users, self.batch)
            if not copies.ids:
                break
            report.copies += len(copies.ids)
            await self._files(copies.file_ids, report)

    async def _withdrawn(self, cutoff: float, org_id: str, report: RetentionReport) -> None:
        while True:
            ids = await self.store.withdrawn_files(cutoff, org_id, self.batch)
            deleted = await self._files(ids, report)
            if len(ids) < self.batch or not deleted:
                break

    async def _files(self, file_ids: list[str], report: RetentionReport) -> int:
        gone = await self.store.delete_files(file_ids)
        report.files += len(gone)
        report.bytes += sum(size for _, size in gone)
        for sha in dict.fromkeys(sha for sha, _ in gone):
            checked = time.time()  # an upload of the same bytes after this touches the blob: it stays
            if not await self.store.sha_in_use(sha) and await self.vault.remove_blob(sha, checked):
                report.blobs += 1
        return len(gone)
