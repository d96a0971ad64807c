"""The organisation's permission table over REST: `GET /v1/admin/permissions`, `PUT /v1/admin/permissions`.

GET answers the whole table: each permission with the roles that hold it, its default, whether the organisation
overrode it, and whether an organisation may (`editable`). PUT takes `{"create_group": ["owner", "admin"],
"upload_files": null}`: a list of roles sets a row, null puts it back to its default; rows not named stay. It is
all or nothing: one refused row changes none. Both need `edit_org` (owners and admins).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from audit import AuditEvent
from audit.appkeys import AUDIT
from chat.service import org_flags
from common.wire import read_json_object
from identity.appkeys import PERMISSIONS
from identity.permission_store import PermissionStore
from identity.permissions import ROLES, Permission, parse_changes, require
from store.database import Database

if TYPE_CHECKING:
    from chat.web import ChatApi

class PermissionsApi:
    def __init__(self, api: ChatApi, store: PermissionStore) -> None:
        self.api = api
        self.store = store

    async def get(self, request: web.Request) -> web.Response:
        p = await self.api.who(request)
        table = await self.store.table(p.org)  # the caller's organisation's table
        require(p.user, Permission.EDIT_ORG, table)
        return web.json_response(table.to_wire())

    async def put(self, request: web.Request) -> web.Response:
        p = await self.api.who(request, write=True)
        require(p.user, Permission.EDIT_ORG, await self.store.table(p.org))
        body = await read_json_object(request, allowed={name.value for name in Permission})
        changes = parse_changes(body)
        before = await self.store.table(p.org)
        after = await self.store.change(p.user, p.user.login, changes, p.org)
        names = sorted(c.value for c in changes)
        if AUDIT in request.app:  # the front door's audit log (docs/audit.md)
            await request.app[AUDIT].record(AuditEvent(
                "org.permissions", "org", p.org, actor=p.user.login,
                before={n: sorted(before.roles(Permission(n))) for n in names},
                after={n: sorted(after.roles(Permission(n))) for n in names}))
        # Open pages show or hide their buttons at once: each picks its role's list.
        await self.api.bus.publish({"type": "permissions", "org": p.org,
                                    "roles": {role: after.held_by(role) for role in ROLES}})
        return web.json_response(after.to_wire())


def attach_permissions(app: web.Application, api: ChatApi, db: Database) -> PermissionStore:
    """The server's permission store (the front door's, else one of our own), its settings flags read from the
    chat organisation settings, and its routes."""
    store = app[PERMISSIONS] if PERMISSIONS in app else PermissionStore(db)
    app[PERMISSIONS] = store

    async def flags(org_id: str) -> dict[str, bool]:
        return org_flags(await api.store.get_org(org_id))

    store.flags = flags
    api.service.permissions = store
    rest = PermissionsApi(api, store)
    app.router.add_get("/v1/admin/permissions", rest.get)
    app.router.add_put("/v1/admin/permissions", rest.put)
    return store
