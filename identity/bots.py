"""Bots with owners (table `bots`): a bot is a chat user of role bot that someone made; it acts only while that
someone may.

`POST /v1/bots` (integrations/) records the owner and a signing secret for what the server sends the bot's
integration URL; the secret is shown once and kept sealed (identity/sealed.py, context `bot:<login>`). Every
API-key check asks `disabled(login)` (chat/auth.py): while the owner's account is
inactive the bot's keys authenticate nowhere, in every process (it reads the store, like the key itself), and
they work again when the owner is reactivated. Keys made by `convene keys create` have no row: no owner.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import Conflict, Unauthorized
from identity.sealed import SecretSealer, seal_plaintext_rows
from store.database import Database
from store.schema import accounts, bots

log = logging.getLogger(__name__)


class BotDisabled(Unauthorized):
    """A bot whose owner's account is deactivated: its keys authenticate nowhere until the owner is back."""

    code = "bot_disabled"


class BotExists(Conflict):
    code = "bot_exists"


@dataclass(frozen=True)
class Bot:
    login: str
    owner: str
    created_at: float

    def to_wire(self) -> dict[str, Any]:
        return {"login": self.login, "owner": self.owner, "created_at": self.created_at}


def _context(login: str) -> str:
    return f"bot:{login}"


class BotRegistry:
    def __init__(self, db: Database, sealer: SecretSealer) -> None:
        self.db = db
        self.sealer = sealer

    async def create(self, login: str, owner: str, org: str = "default") -> tuple[Bot, str]:
        """Records `login` as a bot owned by `owner`; returns it and its signing secret (shown once to the owner,
        kept to sign requests to the bot's integration URL)."""
        secret = secrets.token_urlsafe(32)
        bot = Bot(login=login, owner=owner, created_at=time.time())

        async def op(conn: AsyncConnection) -> bool:
            if (await conn.execute(select(bots.c.login).where(bots.c.login == login))).first() is not None:
                return False
            sealed = self.sealer.seal(secret, _context(login))
            await conn.execute(bots.insert().values(login=login, org_id=org, owner=owner, signing_secret=sealed,
                                                    created_at=bot.created_at))
            return True
        if not await self.db.write(op):
            raise BotExists(f"{login!r} is already a bot", login=login)
        return bot, secret

    async def get(self, login: str) -> Bot | None:
        row = await self.db.first(select(bots).where(bots.c.login == login))
        return None if row is None else Bot(login=row.login, owner=row.owner, created_at=float(row.created_at))

    async def signing_secret(self, login: str) -> str | None:
        row = await self.db.first(select(bots.c.signing_secret).where(bots.c.login == login))
        return None if row is None else self.sealer.open_stored(str(row.signing_secret), _context(login))

    async def seal_stored(self) -> int:
        """Seals the signing secrets stored in plaintext before they were sealed; how many (a server's start)."""
        return await self.db.write(lambda conn: seal_plaintext_rows(
            conn, bots, bots.c.login, bots.c.signing_secret, self.sealer, _context))

    async def all(self, org: str = "default") -> list[Bot]:
        """Organisation `org`'s bots."""
        rows = await self.db.all(select(bots).where(bots.c.org_id == org).order_by(bots.c.created_at))
        return [Bot(login=r.login, owner=r.owner, created_at=float(r.created_at)) for r in rows]

    async def owned_by(self, owner: str) -> list[str]:
        rows = await self.db.all(select(bots.c.login).where(bots.c.owner == owner))
        return [r.login for r in rows]

    async def disabled(self, login: str) -> bool:
        """True when `login` is a bot whose owner's account is inactive (one indexed join)."""
        query = (select(accounts.c.active).select_from(bots.join(accounts, accounts.c.login == bots.c.owner))
                 .where(bots.c.login == login))
        row = await self.db.first(query)
        return row is not None and not bool(row.active)

    async def check(self, login: str) -> None:
        if await self.disabled(login):
            raise BotDisabled("this bot's owner was deactivated; its keys work again when the owner is reactivated",
                              login=login)
