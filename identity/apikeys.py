"""API keys for the REST API: `cvk_<id>_<secret>`, kept in the store (`api_keys`) as SHA-256 hashes.

A key acts as a named (bot) user with a role; the chat sidecar maps it to a user of that name: that user is the
key's person. A revoked key keeps its row (name, role, when it was made and revoked) and authenticates nowhere:
every check reads the store, so a revocation made by any process holds in every process at once.

Access ends with the person (#10): deactivating a login (identity/passwords.py `disable`, the one write behind
POST /v1/users/{login}/deactivate, `convene users disable` and the directory sync) revokes the keys named after
it, and reactivation does not revive them. A key whose person's account is inactive (one made after the
deactivation) and a bot key whose owner's account is inactive (identity/bots.py) authenticate nowhere either;
the bot's come back with its owner, as before. The same check serves the chat API and the rooms API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from audit import AuditEvent, Recorder
from common.errors import InvalidField, NotFound, TokenRevoked, Unauthorized
from identity.bots import BotDisabled
from identity.orgs import DEFAULT_ORG
from store.database import Database
from store.schema import accounts, api_keys, bots, chat_users

ROLES = ("admin", "member", "bot")
PREFIX = "cvk_"
_KEY_ID_LEN = 12  # hex digits


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    role: str
    created_at: float
    revoked_at: float | None = None
    org: str = "default"  # the organisation the key belongs to (identity/orgs.py); it works at its Hosts only

    def to_wire(self) -> dict[str, object]:
        return {"id": self.key_id, "name": self.name, "role": self.role, "created_at": self.created_at,
                "revoked_at": self.revoked_at}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: Any) -> ApiKey:
    return ApiKey(key_id=row.key_id, name=row.name, role=row.role, created_at=float(row.created_at),
                  revoked_at=None if row.revoked_at is None else float(row.revoked_at), org=str(row.org_id))


_PERSON, _OWNER = accounts.alias("key_person"), accounts.alias("key_owner")
_USER = chat_users.alias("key_user")
# The key's person is the login its name names IN THE KEY'S ORGANISATION: the login's chat_users row says which
# organisation (default without a row); a key `ci` of acme is not the default organisation's user `ci`.
_SAME_ORG = func.coalesce(_USER.c.org_id, DEFAULT_ORG) == api_keys.c.org_id
# A key with whether its person's and (for a bot) its owner's accounts are active: NULL where there is no such
# account (a service key like "loadtest", a bot made without an owner). Primary-key joins: one read per check.
_WITH_PEOPLE = (select(api_keys, _PERSON.c.active.label("person_active"), _OWNER.c.active.label("owner_active"))
                .select_from(api_keys.outerjoin(_USER, _USER.c.login == api_keys.c.name)
                             .outerjoin(_PERSON, and_(_PERSON.c.login == api_keys.c.name, _SAME_ORG))
                             .outerjoin(bots, and_(bots.c.login == api_keys.c.name, _SAME_ORG))
                             .outerjoin(_OWNER, _OWNER.c.login == bots.c.owner)))


class ApiKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.audit = Recorder.on(db)

    async def create(self, name: str, role: str = "admin", org: str = "default") -> tuple[ApiKey, str]:
        """Returns the key and its full secret string, which is shown once and never stored."""
        if role not in ROLES:
            raise InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
        if not name or len(name) > 64:
            raise InvalidField("name must be 1-64 characters", field="name")
        secret = secrets.token_urlsafe(24)
        key = ApiKey(key_id=secrets.token_hex(_KEY_ID_LEN // 2), name=name, role=role, created_at=time.time(),
                     org=org)
        await self.insert(key, _hash(secret))
        await self.audit.record(AuditEvent("api_key.create", "api_key", key.key_id,
                                           after={"name": name, "role": role}, org_id=key.org))
        return key, f"{PREFIX}{key.key_id}_{secret}"

    async def insert(self, key: ApiKey, secret_hash: str) -> None:
        """Stores a key whose secret is known only by its hash (the importer of an old keys.db)."""
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(api_keys.insert().values(
                key_id=key.key_id, name=key.name, role=key.role, secret_hash=secret_hash,
                created_at=key.created_at, revoked_at=key.revoked_at, org_id=key.org))
        await self.db.write(op)

    async def verify(self, presented: str) -> ApiKey:
        if not presented.startswith(PREFIX) or presented.count("_") < 2:
            raise Unauthorized("not an API key")
        key_id, _, secret = presented[len(PREFIX):].partition("_")
        row = await self.db.first(_WITH_PEOPLE.where(api_keys.c.key_id == key_id))
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise Unauthorized("unknown API key")
        if row.revoked_at is not None:
            raise Unauthorized("this API key was revoked")
        if row.person_active is not None and not row.person_active:
            raise TokenRevoked("this API key's user was deactivated")
        if row.owner_active is not None and not row.owner_active:
            raise BotDisabled("this bot's owner was deactivated; its keys work again when the owner is reactivated",
                              login=row.name)
        return _key(row)

    async def list(self) -> list[ApiKey]:
        rows = await self.db.all(select(api_keys).order_by(api_keys.c.created_at))
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str, org: str | None = None) -> ApiKey:
        """Revokes a key (idempotent: revoking a revoked key keeps its first revocation time); of organisation
        `org` only, when given (another's is not found)."""
        mine = api_keys.c.key_id == key_id
        if org is not None:
            mine = mine & (api_keys.c.org_id == org)

        async def op(conn: AsyncConnection) -> tuple[Any, int]:
            done = await conn.execute(update(api_keys).where(mine, api_keys.c.revoked_at.is_(None))
                                      .values(revoked_at=time.time()))
            return (await conn.execute(select(api_keys).where(mine))).first(), done.rowcount
        row, revoked_now = await self.db.write(op)
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        key = _key(row)
        if revoked_now:
            await self.audit.record(AuditEvent("api_key.revoke", "api_key", key_id, before={"revoked": False},
                                               after={"revoked": True, "name": key.name, "role": key.role},
                                               org_id=key.org))
        return key
