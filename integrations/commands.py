"""Slash commands and their invocations, as stored (tables `slash_commands`, `command_invocations`).

A command is a trigger (`/deploy`), the URL it POSTs to and the secret that signs those POSTs. Each time someone
runs it, an invocation is recorded: its `response_url` (/v1/commands/responses/{id}/{secret}) lets the
integration answer later, at most RESPONSE_USES times within RESPONSE_SECONDS. Only the secret's SHA-256 is kept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import Conflict, ConveneError, InvalidField, NotFound
from identity.sealed import SecretSealer, seal_plaintext_rows
from store.database import Database
from store.schema import command_invocations, slash_commands

TRIGGER = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}$")
RESPONSE_USES = 5
RESPONSE_SECONDS = 30 * 60
MAX_COMMANDS = 500


class CommandExists(Conflict):
    code = "command_exists"


class CommandNotFound(NotFound):
    code = "command_not_found"


class ResponseUrlNotFound(NotFound):
    """No such response_url (never issued, its secret wrong, or its command deleted)."""

    code = "response_url_not_found"


class ResponseUrlGone(ConveneError):
    """A response_url that worked once and no longer does (410: asking again will not help)."""

    code, status = "response_url_gone", 410


class ResponseUrlExpired(ResponseUrlGone):
    code = "response_url_expired"


class ResponseUrlUsedUp(ResponseUrlGone):
    code = "response_url_used_up"


@dataclass(frozen=True)
class Command:
    id: str
    trigger: str
    url: str
    secret: str
    description: str
    created_by: str
    created_at: float
    org_id: str = "default"  # each organisation has its own commands (a trigger is unique within one)

    def to_wire(self) -> dict[str, Any]:
        """Never the secret: it is shown once, when the command is made."""
        return {"id": self.id, "trigger": self.trigger, "url": self.url, "description": self.description,
                "created_by": self.created_by, "created_at": self.created_at}

    @property
    def bot_login(self) -> str:
        """The user that posts the command's in_channel answers (logins are unique across organisations, so
        another organisation's is named after it too)."""
        return f"cmd_{self.trigger}" if self.org_id == "default" else f"cmd_{self.trigger}@{self.org_id}"


@dataclass(frozen=True)
class Invocation:
    id: str
    command_id: str
    user_login: str
    channel_id: str
    uses: int
    expires_at: float


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _context(command_id: str) -> str:
    return f"command:{command_id}"


def _command(row: Any, sealer: SecretSealer) -> Command:
    return Command(id=row.id, trigger=row.trigger, url=row.url, secret=sealer.open_stored(row.secret, _context(row.id)),
                   description=row.description, created_by=row.created_by, created_at=float(row.created_at),
                   org_id=row.org_id)


def valid_trigger(raw: object) -> str:
    value = raw.lstrip("/") if isinstance(raw, str) else ""
    if not TRIGGER.match(value):
        raise InvalidField("trigger is 1-32 lower-case letters, digits, '-' or '_' (without the '/')", field="trigger")
    return value


class CommandStore:
    """Slash commands; each one's signing secret is kept sealed (identity/sealed.py, context `command:<id>`)."""

    def __init__(self, db: Database, sealer: SecretSealer) -> None:
        self.db = db
        self.sealer = sealer

    async def create(self, trigger: str, url: str, description: str, created_by: str,
                     org: str = "default") -> Command:
        command = Command(id=f"cmd_{secrets.token_hex(8)}", trigger=trigger, url=url,
                          secret=secrets.token_urlsafe(32), description=description, created_by=created_by,
                          created_at=time.time(), org_id=org)
        mine = slash_commands.c.org_id == org

        async def op(conn: AsyncConnection) -> str | None:
            taken = (await conn.execute(select(slash_commands.c.id).where(
                mine, slash_commands.c.trigger == trigger))).first()
            if taken is not None:
                return "exists"
            count = (await conn.execute(select(func.count()).select_from(slash_commands).where(mine))).scalar_one()
            if count >= MAX_COMMANDS:
                return "full"
            await conn.execute(slash_commands.insert().values(
                id=command.id, org_id=org, trigger=trigger, url=url,
                secret=self.sealer.seal(command.secret, _context(command.id)), description=description,
                created_by=created_by, created_at=command.created_at))
            return None
        problem = await self.db.write(op)
        if problem == "exists":
            raise CommandExists(f"/{trigger} is already a command", trigger=trigger)
        if problem == "full":
            raise Conflict(f"at most {MAX_COMMANDS} commands")
        return command

    async def list(self, org: str = "default") -> list[Command]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(slash_commands).where(slash_commands.c.org_id == org)
                                       .order_by(slash_commands.c.trigger))).all()
        return [_command(r, self.sealer) for r in rows]

    async def by_trigger(self, trigger: str, org: str = "default") -> Command | None:
        """Organisation `org`'s command `/trigger` (another's trigger is not a command there)."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(slash_commands).where(
                slash_commands.c.org_id == org, slash_commands.c.trigger == trigger))).first()
        return None if row is None else _command(row, self.sealer)

    async def get(self, command_id: str) -> Command | None:
        row = await self.db.first(select(slash_commands).where(slash_commands.c.id == command_id))
        return None if row is None else _command(row, self.sealer)

    async def seal_stored(self) -> int:
        """Seals the signing secrets stored in plaintext before they were sealed; how many (a server's start)."""
        return await self.db.write(lambda conn: seal_plaintext_rows(
            conn, slash_commands, slash_commands.c.id, slash_commands.c.secret, self.sealer, _context))

    async def delete(self, command_id: str) -> None:
        async def op(conn: AsyncConnection) -> int:
            await conn.execute(delete(command_invocations).where(command_invocations.c.command_id == command_id))
            done = await conn.execute(delete(slash_commands).where(slash_commands.c.id == command_id))
            return int(done.rowcount)
        if not await self.db.write(op):
            raise CommandNotFound(f"no command {command_id!r}")

    # Invocations ------------------------------------------------------------------------------

    async def invoke(self, command: Command, user_login: str, channel_id: str) -> tuple[str, str]:
        """Records an invocation; returns its id and response_url secret (expired ones are pruned here)."""
        inv_id, secret, now = f"inv_{secrets.token_hex(8)}", secrets.token_urlsafe(24), time.time()

        async def op(conn: AsyncConnection) -> None:
            await conn.execute(delete(command_invocations).where(command_invocations.c.expires_at < now - 3600))
            await conn.execute(command_invocations.insert().values(
                id=inv_id, command_id=command.id, secret_hash=_hash(secret), user_login=user_login,
                channel_id=channel_id, uses=0, created_at=now, expires_at=now + RESPONSE_SECONDS))
        await self.db.write(op)
        return inv_id, secret

    async def use_response_url(self, inv_id: str, secret: str) -> Invocation:
        """Counts one use of a response_url, or refuses it: unknown or wrong secret (404), past its 30 minutes or
        its 5 uses (410). The count goes up in the same write that checks it, so racing uses never exceed 5."""
        now = time.time()

        async def op(conn: AsyncConnection) -> tuple[str, Any]:
            row = (await conn.execute(select(command_invocations)
                                      .where(command_invocations.c.id == inv_id))).first()
            if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
                return "missing", None
            if row.expires_at < now:
                return "expired", None
            done = await conn.execute(update(command_invocations).where(
                command_invocations.c.id == inv_id, command_invocations.c.uses < RESPONSE_USES)
                .values(uses=command_invocations.c.uses + 1))
            if done.rowcount == 0:
                return "used_up", None
            return "ok", row
        outcome, row = await self.db.write(op)
        if outcome == "missing":
            raise ResponseUrlNotFound("no such response_url")
        if outcome == "expired":
            raise ResponseUrlExpired(f"a response_url works for {RESPONSE_SECONDS // 60} minutes")
        if outcome == "used_up":
            raise ResponseUrlUsedUp(f"a response_url works {RESPONSE_USES} times", uses=RESPONSE_USES)
        return Invocation(id=row.id, command_id=row.command_id, user_login=row.user_login,
                          channel_id=row.channel_id, uses=int(row.uses) + 1, expires_at=float(row.expires_at))
