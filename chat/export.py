"""`convene export`: the whole chat store as versioned JSONL (docs/export.md), files beside it.

One record per line, `{"type": ..., <type>: {...}}`, in Mattermost's bulk order: version, organisation,
departments, users, channels, memberships, messages (threads, reactions and edits ride in each message), tasks,
files. File contents go to the directory `<out>.files/`, one file per blob named by its SHA-256.

Streamed: rows are read a page at a time (keyset on the primary key) and written on a thread, so a store of
millions of messages needs one page of memory. A message's stored body is already its wire JSON: it is written
as it is, never parsed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select

from audit import AuditEvent, Recorder
from chat.files import FileVault
from chat.model import OrgSettings
from common.names import department_ancestors
from store.database import Database
from store.schema import accounts, chat_channels, chat_file_refs, chat_files, chat_members, chat_messages, chat_settings, chat_users

log = logging.getLogger(__name__)
FORMAT = "convene-export"
VERSION = 1
PAGE = 2000


def files_dir_of(out: Path) -> Path:
    """Where an export keeps its file blobs: beside the JSONL, `<name>.files/`."""
    return out.with_name(out.name + ".files")


def line(kind: str, value: Any) -> bytes:
    return (json.dumps({"type": kind, kind: value}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@dataclass
class ExportCounts:
    users: int = 0
    departments: int = 0
    channels: int = 0
    memberships: int = 0
    messages: int = 0
    tasks: int = 0
    files: int = 0
    files_missing: int = 0
    seconds: float = 0.0
    extra: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "extra"}

    def summary(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.as_dict().items() if k != "seconds") + \
            f" in {self.seconds:.1f} s"


class Exporter:
    """Writes one export of `db` (blobs read from `vault`) to `out`."""

    def __init__(self, db: Database, vault: FileVault) -> None:
        self.db = db
        self.vault = vault
        self.counts = ExportCounts()

    async def _pages(self, table: Any, key: Any, where: Any = None) -> AsyncIterator[list[Any]]:
        """All rows of `table` in `key` order, PAGE rows per read (a read holds no lock between pages)."""
        last: Any = None
        while True:
            stmt = select(table).order_by(key).limit(PAGE)
            if where is not None:
                stmt = stmt.where(where)
            if last is not None:
                stmt = stmt.where(key > last)
            async with self.db.read() as conn:
                rows = list((await conn.execute(stmt)).all())
            if not rows:
                return
            yield rows
            last = getattr(rows[-1], key.name)

    async def run(self, out: Path) -> ExportCounts:
        started = time.perf_counter()
        blobs = files_dir_of(out)
        await asyncio.to_thread(blobs.mkdir, parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        handle = await asyncio.to_thread(open, tmp, "wb")
        try:
            await self._write_all(handle, blobs)
        finally:
            await asyncio.to_thread(handle.close)
        os.replace(tmp, out)  # a reader never sees half an export under the final name
        self.counts.seconds = time.perf_counter() - started
        return self.counts

    async def _write_all(self, handle: BinaryIO, blobs: Path) -> None:
        async def put(chunk: list[bytes]) -> None:
            if chunk:
                await asyncio.to_thread(handle.write, b"".join(chunk))

        await put([line("version", {"format": FORMAT, "version": VERSION, "exported_at": time.time()})])
        await put([line("organisation", {"id": "default", "settings": (await self._org()).to_wire()})])
        await put([line("department", {"path": p}) for p in await self._departments()])
        await self._users(put)
        async for rows in self._pages(chat_channels, chat_channels.c.id):
            self.counts.channels += len(rows)
            await put([line("channel", dict(r._mapping)) for r in rows])  # every column, as the table has them
        await self._memberships(put)
        async for rows in self._pages(chat_messages, chat_messages.c.ord):
            self.counts.messages += len(rows)
            # The stored body is the message's wire JSON already.
            await put([b'{"type":"message","message":' + r.body.encode() + b"}\n" for r in rows])
        async for rows in self._pages(chat_messages, chat_messages.c.ord, chat_messages.c.task_status.is_not(None)):
            self.counts.tasks += len(rows)
            await put([line("task", {"message": r.id, "assignee": r.task_assignee, "status": r.task_status,
                                     "due": r.task_due}) for r in rows])
        await self._files(put, blobs)

    async def _org(self) -> OrgSettings:
        row = await self.db.first(select(chat_settings.c.value).where(chat_settings.c.key == "org"))
        return OrgSettings.from_wire(json.loads(row[0])) if row else OrgSettings()

    async def _departments(self) -> list[str]:
        async with self.db.read() as conn:
            paths = [r[0] for r in await conn.execute(select(chat_users.c.department).distinct())]
        every = department_ancestors(paths)
        self.counts.departments = len(every)
        return sorted(every)  # parents before children

    async def _users(self, put: Any) -> None:
        async with self.db.read() as conn:
            inactive = {r[0] for r in await conn.execute(select(accounts.c.login).where(accounts.c.active.is_(False)))}
        async for rows in self._pages(chat_users, chat_users.c.login):
            self.counts.users += len(rows)
            await put([line("user", {**dict(r._mapping), "active": r.login not in inactive}) for r in rows])

    async def _memberships(self, put: Any) -> None:
        """Per channel, its members (a DM's identity on import is its kind plus these)."""
        async for rows in self._pages(chat_channels, chat_channels.c.id):
            async with self.db.read() as conn:
                members = (await conn.execute(select(chat_members.c.channel_id, chat_members.c.login)
                                              .where(chat_members.c.channel_id.in_([r.id for r in rows]))
                                              .order_by(chat_members.c.channel_id, chat_members.c.login))).all()
            self.counts.memberships += len(members)
            await put([line("membership", {"channel": m.channel_id, "login": m.login}) for m in members])

    async def _files(self, put: Any, blobs: Path) -> None:
        """Files some message carries (an upload never posted, or one whose messages are all gone, stays)."""
        async for rows in self._pages(chat_files, chat_files.c.id, chat_files.c.attached_at.is_not(None)):
            async with self.db.read() as conn:
                refs = (await conn.execute(select(chat_file_refs).where(
                    chat_file_refs.c.file_id.in_([r.id for r in rows])))).all()
            by_file: dict[str, list[list[str]]] = {}
            for ref in refs:
                by_file.setdefault(ref.file_id, []).append([ref.message_id, ref.channel_id])
            chunk = []
            for r in rows:
                if r.id not in by_file:
                    continue
                present = await asyncio.to_thread(self._copy_blob, r.sha256, blobs)
                self.counts.files += 1
                self.counts.files_missing += 0 if present else 1
                chunk.append(line("file", {
                    "id": r.id, "sha256": r.sha256, "name": r.name, "mime": r.mime, "size": r.size,
                    "uploader": r.uploader, "created_at": r.created_at, "attached_at": r.attached_at,
                    "refs": by_file[r.id], "blob": f"{blobs.name}/{r.sha256}" if present else None}))
            await put(chunk)

    def _copy_blob(self, sha256: str, blobs: Path) -> bool:
        source = self.vault.path_of(sha256)
        target = blobs / sha256
        if target.exists():
            return True
        if not source.exists():
            log.warning("file blob %s is missing from the vault; exported without its content", sha256)
            return False
        try:
            os.link(source, target)  # same filesystem: no copy (blobs are never written in place)
        except OSError:
            shutil.copyfile(source, target)
        return True


async def export_store(db: Database, vault: FileVault, out: Path, recorder: Recorder) -> ExportCounts:
    counts = await Exporter(db, vault).run(out)
    await recorder.record(AuditEvent("export.run", "export", out.name, after=counts.as_dict()))
    return counts
