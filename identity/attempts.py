"""Sign-in attempts, counted in the store (table `signin_failures`) so every process of a deployment shares them:
`convene serve` behind a balancer, several servers on one database.

An attempt is counted BEFORE its password is checked, by one atomic upsert per key that returns the new count
(INSERT … ON CONFLICT DO UPDATE … RETURNING, PostgreSQL and SQLite ≥ 3.35). Checking first and counting after
a failure let parallel guesses all pass the check before any failure was written (N×5 tries); counted first,
the sixth attempt in a window is refused whatever runs beside it.

Two keys per attempt, the login's and the address's, each scoped to the organisation whose Host was asked and
stored as a sha256 hex digest (fixed length, whatever the login's lowercase form grows to). Each key counts in a
window that starts at its first attempt; past MAX_FAILURES the key is locked out until the window ends (429
too_many_attempts, Retry-After). A refused attempt counts against no other key. A success forgets the login's
count and takes its own attempt off the address's (never more: one right password does not clear an address
that guessed at many accounts). Expired rows are swept at most once a minute per process.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import TooManyAttempts
from store.database import Database
from store.schema import signin_failures
from store.upsert import dialect_insert

log = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
SWEEP_SECONDS = 60.0


def attempt_key(org: str, kind: str, value: str) -> str:
    """The stored key of a login ("login", lowercased) or an address ("addr") at organisation `org`."""
    return hashlib.sha256(f"{org}|{kind}|{value}".encode()).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """One counted attempt: what `succeeded` needs to take it back."""

    org: str
    login_key: str
    address_key: str


@dataclass(frozen=True)
class _Count:
    failures: int
    window_start: float


class SignInAttempts:
    def __init__(self, db: Database, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window = window
        self._swept_at = 0.0

    async def begin(self, org: str, login: str, address: str) -> Attempt:
        """Counts an attempt of `login` from `address`; TooManyAttempts when either key is past the limit."""
        attempt = Attempt(org, attempt_key(org, "login", login.lower()), attempt_key(org, "addr", address))
        now = time.time()
        sweep = now - self._swept_at > SWEEP_SECONDS
        if sweep:
            self._swept_at = now

        async def op(conn: AsyncConnection) -> _Count | None:
            if sweep:
                await conn.execute(delete(signin_failures).where(signin_failures.c.window_start <= now - self.window))
            login = await self._count(conn, attempt.login_key, org, now)
            if login.failures > self.max_failures:
                return login
            address = await self._count(conn, attempt.address_key, org, now)
            if address.failures > self.max_failures:
                await conn.execute(self._take_back(attempt.login_key, org))  # refused: not the login's attempt
                return address
            return None
        over = await self.db.write(op)
        if over is not None:
            raise TooManyAttempts("too many failed sign-ins; try again later",
                                  retry_after=max(1.0, over.window_start + self.window - now))
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the login starts over; the address loses this attempt only."""
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(signin_failures).where(signin_failures.c.key == attempt.login_key,
                                                             signin_failures.c.org_id == attempt.org))
            await conn.execute(self._take_back(attempt.address_key, attempt.org))
        await self.db.write(op)

    async def cancelled(self, attempt: Attempt) -> None:
        """No password was judged (the directory did not answer): the attempt counts against neither key."""
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(self._take_back(attempt.login_key, attempt.org))
            await conn.execute(self._take_back(attempt.address_key, attempt.org))
        await self.db.write(op)

    async def failures(self, org: str, kind: str, value: str) -> int:
        """The key's count in its window (0 without one): what the admin's tools and the tests read."""
        now = time.time()
        async with self.db.read() as conn:
            count = (await conn.execute(select(signin_failures.c.failures).where(
                signin_failures.c.key == attempt_key(org, kind, value), signin_failures.c.org_id == org,
                signin_failures.c.window_start > now - self.window))).scalar()
        return int(count or 0)

    async def _count(self, conn: AsyncConnection, key: str, org: str, now: float) -> _Count:
        """One more attempt for `key`, atomically, and its new count: a key whose window has passed starts a new
        one; a count past the limit stays at limit + 1 (refused attempts do not pile up)."""
        insert = dialect_insert(self.db, signin_failures)
        stale = signin_failures.c.window_start <= now - self.window
        upsert = insert.values(key=key, org_id=org, failures=1, window_start=now).on_conflict_do_update(
            index_elements=[signin_failures.c.key], set_={
                "failures": case((stale, 1), (signin_failures.c.failures > self.max_failures,
                                              signin_failures.c.failures), else_=signin_failures.c.failures + 1),
                "window_start": case((stale, now), else_=signin_failures.c.window_start)},
        ).returning(signin_failures.c.failures, signin_failures.c.window_start)
        row = (await conn.execute(upsert)).one()
        return _Count(int(row.failures), float(row.window_start))

    @staticmethod
    def _take_back(key: str, org: str) -> Any:
        return update(signin_failures).where(and_(signin_failures.c.key == key, signin_failures.c.org_id == org,
                                                  signin_failures.c.failures > 0)).values(
            failures=signin_failures.c.failures - 1)
