"""The directory sync's status per organisation, in the store (table `directory_status`): the last run (its
report: counts, errors, when), the last error, and whether a run is going, so every process of a deployment
answers GET /v1/admin/ldap/status alike (the sync may have run in another process, or from the CLI).

A run is a lease: `started` sets `running_since` and `holder` only where no run holds them (one conditional
UPDATE, so of two processes starting at once exactly one wins; the other's run is refused, SyncRunning, 409
sync_running), and only the holder clears them with its report. Every process runs the periodic loop for every
organisation, and an admin may POST a sync at any process: the lease makes them one run at a time. A process
that dies mid-run leaves its lease: one older than STALE_SECONDS is not a run any more and may be taken.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import ConveneError
from store.database import Database
from store.upsert import dialect_insert
from store.schema import directory_status

log = logging.getLogger(__name__)

STALE_SECONDS = 3600.0


class SyncRunning(ConveneError):
    code, status = "sync_running", 409


@dataclass(frozen=True)
class DirectoryRunStatus:
    running: bool
    last_run: dict[str, Any] | None  # SyncReport.to_wire() of the last finished run
    last_error: str | None


class DirectoryStatusStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # This store's name as a lease holder: the process and, within it, this store (one per DirectorySync).
        self.holder = f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(8)}"

    async def started(self, org: str) -> None:
        """Takes the organisation's run lease; SyncRunning when another run (another process's, or another sync
        object's in this one) holds it and is not stale."""
        now = time.time()
        first = dialect_insert(self.db, directory_status).values(org_id=org, updated_at=now).on_conflict_do_nothing()
        take = update(directory_status).where(
            directory_status.c.org_id == org,
            or_(directory_status.c.running_since.is_(None), directory_status.c.running_since < now - STALE_SECONDS),
        ).values(running_since=now, holder=self.holder, updated_at=now)

        async def op(conn: AsyncConnection) -> int:
            await conn.execute(first)
            return int((await conn.execute(take)).rowcount)
        if not await self.db.write(op):
            raise SyncRunning(f"a directory sync of organisation {org} is running in another process")

    async def finished(self, org: str, report: dict[str, Any], error: str | None) -> None:
        """The run's report; the lease ends only if this store still holds it (a run found stale and taken over
        leaves the new holder's lease alone)."""
        mine = directory_status.c.holder == self.holder
        await self.db.write(lambda conn: conn.execute(update(directory_status).where(
            directory_status.c.org_id == org).values(
            running_since=case((mine, None), else_=directory_status.c.running_since),
            holder=case((mine, None), else_=directory_status.c.holder),
            last_run=json.dumps(report), last_error=error, updated_at=time.time())))

    async def read(self, org: str) -> DirectoryRunStatus:
        row = await self.db.first(select(directory_status).where(directory_status.c.org_id == org))
        if row is None:
            return DirectoryRunStatus(running=False, last_run=None, last_error=None)
        running = row.running_since is not None and time.time() - float(row.running_since) < STALE_SECONDS
        return DirectoryRunStatus(running=running, last_run=None if row.last_run is None else json.loads(row.last_run),
                                  last_error=row.last_error)
