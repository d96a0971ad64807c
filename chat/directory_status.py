"""The directory sync's status per organisation, in the store (table `directory_status`): the last run (its
report: counts, errors, when), the last error, and whether a run is going, so every process of a deployment
answers GET /v1/admin/ldap/status alike (the sync may have run in another process, or from the CLI).

A run marks `running_since` when it starts and clears it with its report when it ends. A process that dies
mid-run leaves the mark: a mark older than STALE_SECONDS is not a run any more.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from store.database import Database
from store.schema import directory_status

log = logging.getLogger(__name__)

STALE_SECONDS = 3600.0


@dataclass(frozen=True)
class DirectoryRunStatus:
    running: bool
    last_run: dict[str, Any] | None  # SyncReport.to_wire() of the last finished run
    last_error: str | None


class DirectoryStatusStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def started(self, org: str) -> None:
        await self._put(org, running_since=time.time())

    async def finished(self, org: str, report: dict[str, Any], error: str | None) -> None:
        await self._put(org, running_since=None, last_run=json.dumps(report), last_error=error)

    async def read(self, org: str) -> DirectoryRunStatus:
        async with self.db.read() as conn:
            row = (await conn.execute(select(directory_status).where(directory_status.c.org_id == org))).first()
        if row is None:
            return DirectoryRunStatus(running=False, last_run=None, last_error=None)
        running = row.running_since is not None and time.time() - float(row.running_since) < STALE_SECONDS
        return DirectoryRunStatus(running=running, last_run=None if row.last_run is None else json.loads(row.last_run),
                                  last_error=row.last_error)

    async def _put(self, org: str, **values: Any) -> None:
        """One upsert: two processes writing an organisation's first status row do not collide."""
        values["updated_at"] = time.time()
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        upsert = dialect_insert(directory_status).values(org_id=org, **values).on_conflict_do_update(
            index_elements=[directory_status.c.org_id], set_=values)
        await self.db.write(lambda conn: conn.execute(upsert))
