"""Local passwords, stored as argon2id, and each login's token epoch and active flag (table `accounts`).

Parameters: argon2id, 19 MiB, 2 passes, 1 lane (the OWASP minimum): about 25 ms of CPU per check on the
2-core test machine, so a burst of sign-ins cannot starve the media loop for long. A login without a row,
or without a password, is checked against a dummy hash, so an unknown login costs the same time as a wrong
password and both answer the same error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import InvalidCredentials, InvalidField
from identity.orgs import DEFAULT_ORG
from audit import AuditEvent, Recorder
from store.database import Database
from store.poll_read import PollRead
from store.schema import accounts, api_keys, chat_users, ended_sessions

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Checked when the login has no password, so the answer takes as long as a real check.
_DUMMY_HASH = HASHER.hash("convene-dummy-password")
# Every process's deactivation watch runs it twice a second while it has sockets: built and compiled once, run in
# one round trip (store/poll_read.py), about a quarter of a read's CPU through Database.read.
_DEACTIVATED_SINCE = select(accounts.c.login).where(accounts.c.updated_at > bindparam("since"),
                                                     accounts.c.active.is_(False))
MIN_LENGTH, MAX_LENGTH = 8, 1024


@dataclass(frozen=True)
class Account:
    login: str
    token_epoch: int
    active: bool
    has_password: bool


def _account(row: Any) -> Account:
    return Account(login=row.login, token_epoch=int(row.token_epoch), active=bool(row.active),
                   has_password=row.password_hash is not None)


def check_password_text(password: str) -> str:
    """The password as given, or InvalidField (too short, too long, or only whitespace)."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH or not password.strip():
        raise InvalidField(f"password must be {MIN_LENGTH}-{MAX_LENGTH} characters", field="password")
    return password


def _matches(stored: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.audit = Recorder.on(db)
        self._deactivated_since = PollRead(db, _DEACTIVATED_SINCE)

    async def get(self, login: str) -> Account | None:
        row = await self.db.first(select(accounts).where(accounts.c.login == login))
        return None if row is None else _account(row)

    async def get_many(self, logins: Sequence[str]) -> dict[str, Account]:
        """The accounts of these logins that have one, by login (one read)."""
        if not logins:
            return {}
        rows = await self.db.all(select(accounts).where(accounts.c.login.in_(list(logins))))
        return {str(row.login): _account(row) for row in rows}

    async def ensure(self, login: str) -> Account:
        """The login's account, made (active, no password) when it has none: someone an identity provider
        vouches for gets a token epoch, so deactivating them ends their sessions."""
        async def op(conn: AsyncConnection) -> Any:
            query = select(accounts).where(accounts.c.login == login)
            row = (await conn.execute(query)).first()
            if row is None:
                await conn.execute(accounts.insert().values(login=login, password_hash=None, token_epoch=0,
                                                            active=True, updated_at=time.time()))
                row = (await conn.execute(query)).first()
            return row
        return _account(await self.db.write(op))

    async def set_password(self, login: str, password: str) -> Account:
        """Sets (or replaces) a login's password; makes the account row if there is none. The hash is computed
        before the write, off the write queue."""
        digest = await asyncio.to_thread(HASHER.hash, check_password_text(password))

        async def op(conn: AsyncConnection) -> Any:
            now = time.time()
            done = await conn.execute(update(accounts).where(accounts.c.login == login)
                                      .values(password_hash=digest, updated_at=now))
            if done.rowcount == 0:
                await conn.execute(accounts.insert().values(login=login, password_hash=digest, token_epoch=0,
                                                            active=True, updated_at=now))
            return (await conn.execute(select(accounts).where(accounts.c.login == login))).first()
        return _account(await self.db.write(op))

    async def verify(self, login: str, password: str) -> Account:
        """The account if the password is right and the account active; else InvalidCredentials, the same for an
        unknown login, a wrong password and a disabled account (each costs one argon2 check)."""
        row = await self.db.first(select(accounts).where(accounts.c.login == login))
        stored = None if row is None else row.password_hash
        # On a thread: the check is ~25 ms of CPU, the event loop keeps serving media and chat meanwhile.
        if not await asyncio.to_thread(_matches, stored, password[:MAX_LENGTH]) or row is None or not row.active:
            raise InvalidCredentials("wrong login or password")
        return _account(row)

    async def disable(self, login: str) -> Account:
        """Marks the account inactive and bumps its token epoch (every session and user token of it ends), and
        revokes the API keys that act as this login (a key acts as the user its name names): in one transaction,
        so no process sees the person gone and their keys still good. A login without a row (token-only, no
        password) gets one, inactive, at epoch 1. Reactivation (`enable`) brings back neither old tokens nor
        revoked keys: the person, back, gets new ones."""
        async def op(conn: AsyncConnection) -> tuple[Any, list[str]]:
            now = time.time()
            done = await conn.execute(update(accounts).where(accounts.c.login == login).values(
                active=False, token_epoch=accounts.c.token_epoch + 1, updated_at=now))
            if done.rowcount == 0:
                await conn.execute(accounts.insert().values(login=login, password_hash=None, token_epoch=1,
                                                            active=False, updated_at=now))
            # A key acts as the person its name names in the key's own organisation: the login's organisation is
            # its chat_users row's (default without one), and another organisation's key of that name stays.
            org = (await conn.execute(select(chat_users.c.org_id).where(chat_users.c.login == login))).scalar()
            keys = and_(api_keys.c.name == login, api_keys.c.org_id == (org or DEFAULT_ORG))
            live = [r.key_id for r in (await conn.execute(
                select(api_keys.c.key_id).where(keys, api_keys.c.revoked_at.is_(None)))).all()]
            if live:
                await conn.execute(update(api_keys).where(keys, api_keys.c.revoked_at.is_(None))
                                   .values(revoked_at=now))
            return (await conn.execute(select(accounts).where(accounts.c.login == login))).first(), live
        row, revoked = await self.db.write(op)
        account = _account(row)
        await self.audit.record(AuditEvent("user.deactivate", "user", login, after={
            "active": False, "token_epoch": account.token_epoch, "keys_revoked": revoked}))
        return account

    async def enable(self, login: str) -> None:
        """Lets an inactive account sign in again (the directory enabled it again). The token epoch stays bumped:
        sessions and tokens from before the deactivation stay dead."""
        done = await self.db.write(lambda conn: conn.execute(update(accounts).where(
            accounts.c.login == login, accounts.c.active.is_(False)).values(active=True, updated_at=time.time())))
        if done.rowcount:
            await self.audit.record(AuditEvent("user.activate", "user", login, before={"active": False},
                                               after={"active": True}))

    async def deactivated_since(self, since: float) -> list[str]:
        """Logins deactivated (rows changed and inactive) after `since` (wall clock, so other processes count)."""
        return [row[0] for row in await self._deactivated_since.rows({"since": since})]

    async def end_session(self, sid: str, expires_at: float) -> None:
        """Sign-out: the session `sid` authenticates nowhere from now on (in every process)."""
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(ended_sessions).where(ended_sessions.c.expires_at < time.time()))
            if (await conn.execute(select(ended_sessions.c.sid).where(ended_sessions.c.sid == sid))).first() is None:
                await conn.execute(ended_sessions.insert().values(sid=sid, expires_at=expires_at))
        await self.db.write(op)

    async def session_ended(self, sid: str) -> bool:
        async with self.db.read() as conn:
            return (await conn.execute(select(ended_sessions.c.sid).where(ended_sessions.c.sid == sid))).first() \
                is not None
