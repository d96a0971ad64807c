"""Failed sign-ins, counted in the store (table `signin_failures`) so every process of a deployment shares them:
`convene serve` behind a balancer, several servers on one database. Per process they were each process's own,
and N processes let an attacker try N times as many passwords.

Each key ("login:alice", "addr:10.0.0.1") counts its failures in a window that starts at its first failure; at
MAX_FAILURES the key is locked out until the window ends (429 too_many_attempts, Retry-After). A success
forgets the login's count (never the address's: one right password does not clear an address that guessed at
many accounts). A check is one read of at most two primary-key rows; a failure one upsert; expired rows are
swept at most once a minute per process, so the table holds about one window's worth of failing keys.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import TooManyAttempts
from store.database import Database
from store.schema import signin_failures

log = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
SWEEP_SECONDS = 60.0


@dataclass(frozen=True)
class Recent:
    """What `check` saw: the keys with failures in their window (so `succeeded` writes only when there is some)."""

    failing: frozenset[str]


class SignInAttempts:
    def __init__(self, db: Database, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window = window
        self._swept_at = 0.0

    async def check(self, *keys: str) -> Recent:
        """TooManyAttempts when any key has reached the limit within its window; else what was seen."""
        now = time.time()
        async with self.db.read() as conn:
            rows = (await conn.execute(select(signin_failures).where(
                signin_failures.c.key.in_(keys), signin_failures.c.window_start > now - self.window))).all()
        waits = [r.window_start + self.window - now for r in rows if r.failures >= self.max_failures]
        if waits:
            raise TooManyAttempts("too many failed sign-ins; try again later", retry_after=max(waits))
        return Recent(failing=frozenset(r.key for r in rows))

    async def failed(self, *keys: str, org: str = "default") -> None:
        """One more failure for each key: a key whose window has passed starts a new one."""
        now = time.time()
        cutoff = now - self.window
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        insert = dialect_insert(signin_failures)
        stale = insert.excluded.window_start - self.window >= signin_failures.c.window_start
        upsert = insert.on_conflict_do_update(index_elements=[signin_failures.c.key], set_={
            "failures": case((stale, 1), else_=signin_failures.c.failures + 1),
            "window_start": case((stale, insert.excluded.window_start), else_=signin_failures.c.window_start)})
        sweep = now - self._swept_at > SWEEP_SECONDS
        if sweep:
            self._swept_at = now

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(upsert, [{"key": key, "org_id": org, "failures": 1, "window_start": now}
                                        for key in keys])
            if sweep:
                await conn.execute(delete(signin_failures).where(signin_failures.c.window_start <= cutoff))
        await self.db.write(op)

    async def succeeded(self, login_key: str, recent: Recent) -> None:
        if login_key in recent.failing:
            await self.db.write(lambda conn: conn.execute(
                delete(signin_failures).where(signin_failures.c.key == login_key)))
