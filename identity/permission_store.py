"""The permission table's stored half: each organisation's overrides (table org_permissions), and the checks.

Every part asks it the same way: `await app[PERMISSIONS].require(principal, "read_audit")` raises
`403 not_permitted` naming the permission; `await app[PERMISSIONS].table(org_id)` gives the whole table.

A table read is kept for CACHE_SECONDS: a request that asks several times reads the store once, and a change
made in another process holds here within that second (a change made here holds at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from identity.orgs import DEFAULT_ORG
from identity.permissions import (
    PermissionTable,
    Permission,
    RoleHolder,
    check_changes,
    decode_roles,
    encode_roles,
    require,
    role_of,
)
from store.database import Database
from store.schema import org_permissions

log = logging.getLogger(__name__)
CACHE_SECONDS = 1.0

# The organisation's settings flags the defaults depend on (chat's OrgSettings provides them).
FlagSource = Callable[[str], Awaitable[Mapping[str, bool]]]


async def _no_flags(org_id: str) -> Mapping[str, bool]:
    return {}


class PermissionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.flags: FlagSource = _no_flags  # set by chat's setup: its organisation settings
        self._cache: dict[str, tuple[float, PermissionTable]] = {}

    async def table(self, org_id: str = DEFAULT_ORG) -> PermissionTable:
        hit = self._cache.get(org_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self.db.read() as conn:
            rows = (await conn.execute(select(org_permissions.c.permission, org_permissions.c.roles)
                                       .where(org_permissions.c.org_id == org_id))).all()
        overrides: dict[Permission, frozenset[str]] = {}
        for name, raw in rows:
            try:
                overrides[Permission(name)] = decode_roles(raw)
            except ValueError:  # a row a newer version wrote: ignored rather than failing every check
                log.warning("org %s: unknown permission %r in org_permissions", org_id, name)
        table = PermissionTable(org_id, overrides, dict(await self.flags(org_id)))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[org_id] = (time.monotonic() + CACHE_SECONDS, table)
        return table

    async def require(self, holder: RoleHolder, permission: str | Permission, org_id: str = DEFAULT_ORG) -> None:
        require(holder, permission, await self.table(org_id))

    async def holds(self, holder: RoleHolder, permission: str | Permission, org_id: str = DEFAULT_ORG) -> bool:
        return (await self.table(org_id)).holds(holder, permission)

    async def change(self, actor: RoleHolder, by: str, changes: Mapping[Permission, frozenset[str] | None],
                     org_id: str = DEFAULT_ORG) -> PermissionTable:
        """Sets rows (a set of roles) or puts them back to their default (None), all or none. The actor needs
        edit_org, and may not change a row for a role ranked above their own."""
        self._cache.pop(org_id, None)
        before = await self.table(org_id)
        require(actor, Permission.EDIT_ORG, before)
        check_changes(actor, before, changes)

        async def op(conn: AsyncConnection) -> Any:
            now = time.time()
            for permission, roles in changes.items():
                where = (org_permissions.c.org_id == org_id) & (org_permissions.c.permission == permission.value)
                await conn.execute(delete(org_permissions).where(where))
                if roles is not None:
                    await conn.execute(org_permissions.insert().values(
                        org_id=org_id, permission=permission.value, roles=encode_roles(roles), updated_at=now,
                        updated_by=by))

        await self.db.write(op)
        self._cache.pop(org_id, None)
        log.info("org %s: %s (%s) changed permissions %s", org_id, by, role_of(actor),
                 {p.value: None if r is None else sorted(r) for p, r in changes.items()})
        return await self.table(org_id)

    def forget(self, org_id: str = DEFAULT_ORG) -> None:
        """Drops the cached table (the settings flags it was read under changed)."""
        self._cache.pop(org_id, None)
